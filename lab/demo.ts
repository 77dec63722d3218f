// The local demo: `npm run lab:up` creates three lab hosts (one behind NAT) and writes the
// manifests that point dockmesh at them; `npm run lab:down` removes it all. Run as root.
// See docs/lab.md.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { clearLab, createLab } from "./lab.js";
import { describeCleanup } from "./cleanup.js";
import { labManifestFiles } from "./manifests.js";
import { stateDirFor } from "./plan.js";
import { REQUIREMENTS, ensureSystemPackages } from "./requirements.js";
import { KEYS_FILE, demoKeys, knownHosts, sshConfig } from "./demo-files.js";
import { writePrivateFile } from "../store/state-dir.js";

export const DEMO = {
  prefix: "dmdemo",
  labnet: "198.18.1.0/24",
  natLans: { first: 10, last: 19 },
  hosts: [{ name: "m1" }, { name: "m2" }, { name: "m3", nat: true }],
} as const;

const DEFAULT_DIR = ".state/lab-demo";

function usage(): string {
  return [
    "usage: node dist/lab/demo.js up [--dir <dir>]   create the demo lab and write its manifests (default dir .state/lab-demo)",
    "       node dist/lab/demo.js down               remove the demo lab",
  ].join("\n");
}

/** What the demo needs on the machine: its hosts log in as root, so no sudo (a root-only machine may have none). */
export const DEMO_REQUIREMENTS = REQUIREMENTS.filter((r) => r.binary !== "sudo");

async function up(dir: string): Promise<void> {
  await ensureSystemPackages({ requirements: DEMO_REQUIREMENTS, log: (m) => console.log(`lab: ${m}`) });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The same keys as the last lab:up in this directory: the manifests applied then stay valid.
  const keys = demoKeys(
    dir,
    DEMO.prefix,
    DEMO.hosts.map((h) => h.name),
  );
  console.log(`lab: creating ${DEMO.hosts.length} hosts (prefix ${DEMO.prefix}, lab net ${DEMO.labnet}); an earlier demo lab is replaced, its keys (${join(dir, KEYS_FILE)}) kept`);
  const lab = await createLab({ ...DEMO, hosts: [...DEMO.hosts], keys, log: (m) => console.log(`lab: ${m}`) });
  // Only manifests in manifests/: `kubectl apply -f` reads every .yaml and .json of a directory.
  const manifests = join(dir, "manifests");
  mkdirSync(manifests, { recursive: true });
  for (const [name, text] of Object.entries(labManifestFiles(lab.hosts, lab.sshPrivateKey))) writeFileSync(join(manifests, name), text);
  chmodSync(join(manifests, "00-ssh-key-secret.yaml"), 0o600);
  writePrivateFile(join(dir, "id_ed25519"), lab.sshPrivateKey);
  writeFileSync(join(dir, "known_hosts"), knownHosts(lab.hosts), { mode: 0o644 });
  writeFileSync(join(dir, "ssh_config"), sshConfig(dir, lab.hosts), { mode: 0o644 });
  writeFileSync(join(dir, "hosts.json"), `${JSON.stringify({ controllerNs: lab.controllerNs, controllerAddress: lab.controllerAddress, hosts: lab.hosts }, null, 2)}\n`);
  const rows = lab.hosts.map((h) => `  ${h.name}  ssh ${h.sshUser}@${h.sshHost}  ${h.publicEndpoint ? `endpoint ${h.publicEndpoint}:51820` : `behind NAT (router ${h.routerAddress})`}`);
  console.log(
    [
      "",
      `lab: up in ${lab.timings.createMs} ms:`,
      ...rows,
      "",
      `Manifests (Secret lab-ssh, MeshNetwork mesh, Machines) are in ${manifests}/. Next:`,
      "  npx dockmesh up                                   # in another terminal; reaches the hosts from here",
      "  export KUBECONFIG=~/.dockmesh/kubeconfig",
      `  kubectl apply -f ${manifests}/`,
      "  kubectl -n default get machines -w",
      `Run on a host:     ssh -F ${dir}/ssh_config ${lab.hosts[0]?.name ?? "m1"} docker ps    # no terminal needed`,
      "Remove it all:     npm run lab:down",
    ].join("\n"),
  );
}

async function down(): Promise<void> {
  const report = await clearLab(DEMO.prefix, stateDirFor(DEMO.prefix));
  console.log(`lab: demo removed (${describeCleanup(report)})`);
}

export async function demoMain(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (process.getuid?.() !== 0) {
    console.error("lab: the demo creates network namespaces and runs dockerd and sshd: run it as root (npm run lab:up in a root shell, or sudo npm run lab:up)");
    return 1;
  }
  try {
    if (cmd === "up") {
      const i = rest.indexOf("--dir");
      const dir = resolve(i >= 0 ? (rest[i + 1] ?? DEFAULT_DIR) : DEFAULT_DIR);
      await up(dir);
      return 0;
    }
    if (cmd === "down") {
      await down();
      return 0;
    }
    console.error(usage());
    return 2;
  } catch (e) {
    let msg = e instanceof Error ? e.message : String(e);
    for (let c = (e as Error).cause; c instanceof Error; c = c.cause) msg += `\n  because: ${c.message}`;
    console.error(`lab: ${msg}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  process.exitCode = await demoMain(process.argv.slice(2));
}
