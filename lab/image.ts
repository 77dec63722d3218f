// The lab's container image, with no registry: a tar of busybox-static and one symlink per
// applet (sh, ping, nc, httpd, wget, sleep, cat, dd, ip, ...), loaded with `docker import`.
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runOk } from "./proc.js";

export const LAB_IMAGE = "dockmesh-lab/busybox:latest";

const BUSYBOX_PATHS = ["/bin/busybox", "/usr/bin/busybox"];

/** Builds (once per state directory) the image tar and returns its path. */
export async function buildImageTar(stateDir: string): Promise<string> {
  const tarPath = join(stateDir, "busybox-image.tar");
  if (existsSync(tarPath)) return tarPath;
  const busybox = BUSYBOX_PATHS.find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox is not installed (package busybox-static)");
  const root = join(stateDir, "image-rootfs");
  rmSync(root, { recursive: true, force: true });
  for (const d of ["bin", "etc", "tmp", "www", "proc", "sys", "dev"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(busybox, join(root, "bin", "busybox"));
  const applets = (await runOk([busybox, "--list"]))
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9_.[-]+$/.test(s) && s !== "busybox");
  for (const a of applets) symlinkSync("busybox", join(root, "bin", a));
  writeFileSync(join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  writeFileSync(join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
  // busybox wget looks service names up here; without a port in the URL a static busybox
  // can still crash in its NSS lookup, so always give one (http://10.x.y.z:80/).
  writeFileSync(join(root, "etc", "services"), "http\t\t80/tcp\n");
  const partial = `${tarPath}.partial`;
  await runOk(["tar", "-C", root, "--numeric-owner", "-cf", partial, "."]);
  await runOk(["mv", partial, tarPath]);
  rmSync(root, { recursive: true, force: true });
  return tarPath;
}

/** argv (to run inside a host) that imports the tar as LAB_IMAGE. */
export function importArgv(tarPath: string): string[] {
  return ["docker", "import", "--change", "ENV PATH=/bin", "--change", 'CMD ["/bin/sh"]', tarPath, LAB_IMAGE];
}
