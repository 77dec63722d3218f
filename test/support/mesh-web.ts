// A web container per lab host on the mesh's Docker network, and the check that one reaches
// another: a ping (retried while a first handshake completes) and a fetch of the other's page,
// over IPv4 or IPv6. Shared by the dual-stack e2e tests.
import assert from "node:assert/strict";
import { eventually, type MeshEnv } from "../../lab/mesh-env.js";

export class MeshWeb {
  /** Each host's container address, by family. */
  readonly v4 = new Map<string, string>();
  readonly v6 = new Map<string, string>();

  constructor(
    private readonly env: MeshEnv,
    private readonly network = "mesh",
  ) {}

  page(host: string): string {
    return `page of ${host}`;
  }

  /** (Re)starts `web` on the host; its IPv6 address too when the network has one (returned, "" without). */
  async start(host: string, ipv6 = true): Promise<string> {
    await this.env.lab.exec(host, ["docker", "rm", "-f", "web"]);
    const { ip } = await this.env.lab.startHttpd(host, { name: "web", network: this.network, content: this.page(host) });
    this.v4.set(host, ip);
    if (!ipv6) return "";
    const addr = (await this.env.lab.execOk(host, ["docker", "inspect", "-f", `{{(index .NetworkSettings.Networks "${this.network}").GlobalIPv6Address}}`, "web"])).trim();
    this.v6.set(host, addr);
    return addr;
  }

  /** A ping and a fetch from `from`'s web container to `to`'s, over one family. */
  async reaches(from: string, to: string, family: 4 | 6): Promise<void> {
    const ip = (family === 6 ? this.v6 : this.v4).get(to)!;
    await eventually(
      `${from} pings ${to} over IPv${family}`,
      async () => ((await this.env.lab.exec(from, ["docker", "exec", "web", "ping", `-${family}`, "-c", "1", "-W", "2", ip], { timeoutMs: 10_000 })).code === 0 ? true : undefined),
      30_000,
      500,
    );
    const url = family === 6 ? `http://[${ip}]:80/` : `http://${ip}:80/`;
    const body = await this.env.lab.fetchOk(from, { network: this.network, url, timeoutSec: 5, container: "web" });
    assert.equal(body, this.page(to), `${from} → ${to} over IPv${family}`);
  }
}
