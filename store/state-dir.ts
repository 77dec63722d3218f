// The state dir holds the CA key, the bearer token and (in the database) every Secret: only its
// owner may read it. Modes are enforced at each start, not only when a file is created (a mode
// given to writeFileSync or mkdir applies at creation only, and an older dockmesh or the user may
// have left 0644 files in a 0755 dir).
import { chmodSync, closeSync, fstatSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, writeSync, ftruncateSync, constants, type Stats } from "node:fs";
import { join } from "node:path";

/** Files of the state dir (besides everything in pki/). */
export const stateFiles = ["store.db", "store.db-wal", "store.db-shm", "store.db-journal", "token", "kubeconfig", "store.pid"];

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`inspect ${path}`, { cause: err });
  }
}

function checkOwner(path: string, st: Stats): void {
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(
      `${path} is owned by uid ${st.uid}, not by this process (uid ${uid}): whoever owns it can read or replace the API server's keys and token; use a --state-dir of your own or chown it`,
    );
  }
}

function enforce(path: string, mode: number, kind: "dir" | "file"): void {
  const st = lstatOrUndefined(path);
  if (!st) return;
  if (kind === "dir" ? !st.isDirectory() : !st.isFile()) {
    throw new Error(`${path} must be a ${kind === "dir" ? "directory" : "regular file"} (found ${st.isSymbolicLink() ? "a symbolic link" : "something else"}): remove it so the store can create it`);
  }
  checkOwner(path, st);
  if ((st.mode & 0o777) !== mode) {
    try {
      chmodSync(path, mode);
    } catch (err) {
      throw new Error(`chmod ${mode.toString(8)} ${path}`, { cause: err });
    }
  }
}

/** Creates the state dir (0700) or makes an existing one private: 0700 dirs, 0600 files; refuses foreign owners and links. */
export function secureStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new Error(`create state dir ${stateDir}`, { cause: err });
  }
  // The dir itself may be a link (e.g. to another disk): its target is checked.
  enforce(realpathSync(stateDir), 0o700, "dir");
  const pki = join(stateDir, "pki");
  enforce(pki, 0o700, "dir");
  if (lstatOrUndefined(pki)) for (const name of readdirSync(pki)) enforce(join(pki, name), 0o600, "file");
  for (const name of stateFiles) enforce(join(stateDir, name), 0o600, "file");
}

/** 0600 on the state files that exist now (SQLite creates -wal and -shm after the database is opened). */
export function secureStateFiles(stateDir: string): void {
  for (const name of stateFiles) enforce(join(stateDir, name), 0o600, "file");
}

/** Writes a private file: 0600 whatever the umask and whether or not it existed; never through a link. */
export function writePrivateFile(path: string, data: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new Error(`write ${path}`, { cause: err });
  }
  try {
    checkOwner(path, fstatSync(fd));
    // Mode first, then the secret: a file that was 0644 never holds the token while readable.
    fchmodSync(fd, 0o600);
    ftruncateSync(fd, 0);
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` empty with mode 0600 if it does not exist (SQLite then gives its -wal and -shm the same mode). */
export function ensurePrivateFile(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600));
  } catch (err) {
    throw new Error(`create ${path}`, { cause: err });
  }
  enforce(path, 0o600, "file");
}
