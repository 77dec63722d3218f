// Writing the records files of mesh DNS (issue 13): one command (hosts/scripts/dns-write.sh) per
// host per batch, covering all its meshes. Arguments: the total byte count, then per mesh its
// interface (INTERFACE_NAME) and the byte count of its file; the files' contents, one after
// another, on standard input. Each file is written atomically: to /etc/dockmesh/dns/IF/.mesh.tmp
// (outside records/, which dnsmasq watches), mode 0644, then `mv -f` into records/ — unless it is
// byte for byte what is there. A mesh whose resolver is not configured yet (no
// /etc/dockmesh/dns/IF/dnsmasq.conf) gets nothing; the script says so and exits with
// NO_RESOLVER_EXIT after writing the others.
import { INTERFACE_NAME, checked } from "../api/formats.js";
import { HostError } from "./errors.js";
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { hostText } from "./host-text.js";
import { DNS_WRITE_SH } from "./scripts.generated.js";

export const DNS_DIR = "/etc/dockmesh/dns";
export const NO_RESOLVER_EXIT = 3;

/** hosts/scripts/dns-write.sh as sent (it spells DNS_DIR and NO_RESOLVER_EXIT; test/unit/host-scripts checks). */
export const WRITE_RECORDS_SCRIPT = DNS_WRITE_SH;

export interface RecordsFile {
  interface: string;
  text: string;
}

export interface WriteOutcome {
  /** Interfaces whose file now holds the given text (written or already so). */
  done: string[];
  /** Interfaces whose resolver is not configured yet: nothing written; retry later. */
  noResolver: string[];
}

/** Writes the files in one command; throws a HostError when the command fails. */
export async function writeRecords(session: HostSession, files: readonly RecordsFile[]): Promise<WriteOutcome> {
  const args: string[] = [];
  const bufs: Buffer[] = [];
  for (const [i, f] of files.entries()) {
    checked(f.interface, INTERFACE_NAME, `records file [${i}] interface`, "an interface name");
    const b = Buffer.from(f.text, "utf8");
    args.push(f.interface, String(b.length));
    bufs.push(b);
  }
  const input = Buffer.concat(bufs);
  let r;
  try {
    // exec takes a string: the files are plain ASCII text (mesh/dns-records.ts renders nothing else).
    r = await session.exec(WRITE_RECORDS_SCRIPT, { args: [String(input.length), ...args], input: input.toString("utf8"), timeoutMs: 30_000, maxStdoutBytes: 64 * 1024, maxStderrBytes: 64 * 1024 });
  } catch (err) {
    if (err instanceof OutputTooLargeError) throw err.as("ApplyFailed", "writing the mesh DNS records");
    throw err;
  }
  const lines = r.stdout.split("\n");
  const said = (word: string) => new Set(lines.filter((l) => l.startsWith(`${word} `)).map((l) => l.slice(word.length + 1)));
  const noResolver = said("noresolver");
  if (r.code !== 0 && r.code !== NO_RESOLVER_EXIT) {
    throw new HostError("ApplyFailed", `writing the mesh DNS records failed (exit ${r.code}): ${hostText(r.stderr, 300)}`);
  }
  const ok = new Set([...said("written"), ...said("unchanged")]);
  return {
    done: files.map((f) => f.interface).filter((i) => ok.has(i)),
    noResolver: files.map((f) => f.interface).filter((i) => noResolver.has(i)),
  };
}
