// "Cross-host TCP proven", the same for every variant of a benchmark. The workload is there
// before the clock starts: an httpd container per host on Docker's default bridge (prepareProof,
// untimed), as containers are on a host that is about to join a mesh. The timed part (proveTcp)
// moves each one to the mesh's Docker network (all hosts at once), then from every host
// fetches the next host's page (a ring: h1→h2, …, hN→h1), all at once, each retried until it
// answers. Every host is thereby both a client and a server across the tunnel, by the
// containers' private addresses. Measured on one lab host: `docker run` onto the network costs
// ~850 ms of CPU, `docker network connect` ~280 ms; eight hosts share two cores, so a proof made
// of container starts weighed as much as the configuring it was there to check.
import type { Lab } from "../lab/lab.js";
import { sleep } from "../lab/proc.js";

export const page = (host: string): string => `page of ${host}`;

export interface Proof {
  /** host → its httpd container's address in the network. */
  ips: Map<string, string>;
  /** Fetch attempts made in all (one per host when every tunnel answered at once). */
  attempts: number;
}

const FETCH_DEADLINE_MS = 60_000;
/** The httpd container on every host; fetches run in it too. */
const WEB = "web";

/** Fetches `to`'s page from a container on `from`, retrying (bounded in count and time). */
async function fetchUntilOk(lab: Lab, network: string, from: string, to: string, ip: string): Promise<number> {
  const deadline = Date.now() + FETCH_DEADLINE_MS;
  let last = "";
  for (let attempt = 1; attempt <= 200; attempt++) {
    const r = await lab.fetch(from, { network, url: `http://${ip}:80/`, timeoutSec: 3, container: WEB });
    if (r.code === 0 && r.stdout === page(to)) return attempt;
    last = `exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`;
    if (process.env.BENCH_VERBOSE) console.error(`[proof] ${from} → ${to} attempt ${attempt}: ${last}`);
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  throw new Error(`${from} could not fetch ${to}'s page at ${ip} within ${FETCH_DEADLINE_MS / 1000}s (last: ${last})`);
}

/** Untimed, before "go": the httpd container on every host, on Docker's default bridge. */
export async function prepareProof(lab: Lab, hosts: readonly string[]): Promise<void> {
  await Promise.all(hosts.map((h) => lab.runHttpd(h, { name: WEB, network: "bridge", content: page(h) })));
}

// It leaves the default bridge as it joins the mesh network, whose gateway then is its default
// route: with both, traffic to other hosts' subnets would leave by docker0 (NAT to the uplink).
// (`--gw-priority` on connect would do it in one call, but only from Docker 28.)
const MOVE = 'docker network disconnect bridge "$1" && docker network connect "$2" "$1"';

/** Each host's httpd joins the network, then the ring of fetches; resolves once every fetch has answered. */
export async function proveTcp(lab: Lab, hosts: readonly string[], network: string): Promise<Proof> {
  const ips = new Map<string, string>();
  await Promise.all(
    hosts.map(async (h) => {
      await lab.execOk(h, ["sh", "-c", MOVE, "sh", WEB, network]);
      ips.set(h, await lab.containerIp(h, WEB, network));
    }),
  );
  const counts = await Promise.all(
    hosts.map((h, i) => {
      const to = hosts[(i + 1) % hosts.length]!;
      return fetchUntilOk(lab, network, h, to, ips.get(to)!);
    }),
  );
  return { ips, attempts: counts.reduce((a, b) => a + b, 0) };
}

/** Untimed check after a run: every host fetches every other host's page (the full matrix). */
export async function checkFullMatrix(lab: Lab, hosts: readonly string[], network: string, ips: ReadonlyMap<string, string>): Promise<void> {
  await Promise.all(
    hosts.map(async (from) => {
      for (const to of hosts) {
        if (to === from) continue;
        const r = await lab.fetch(from, { network, url: `http://${ips.get(to)}:80/`, timeoutSec: 5, container: WEB });
        if (r.code !== 0 || r.stdout !== page(to)) throw new Error(`full matrix: ${from} → ${to} failed (exit ${r.code}: ${r.stderr.trim()})`);
      }
    }),
  );
}
