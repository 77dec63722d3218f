// A running flow between two lab hosts' containers: busybox ping at a fixed interval, its reply
// lines timestamped by Docker (`docker logs -t`), so each lost packet is known by its sequence
// number and placed in time between the replies around it.
import type { Lab } from "../lab/lab.js";

export interface FlowReport {
  /** Highest sequence number answered + 1: the packets that had the time to come back. */
  sent: number;
  received: number;
  /** Sequence numbers not answered (below the highest answered one). */
  lost: number[];
  /** Time (ms since the epoch) of each lost packet, interpolated from the replies around it. */
  lostAt: number[];
  /** ping's own summary line, for the record. */
  summary: string;
}

export class PingFlow {
  private constructor(
    private readonly lab: Lab,
    readonly host: string,
    readonly name: string,
    readonly intervalMs: number,
  ) {}

  /** Starts `ping -i interval target` in a detached container on `host` in `network`. */
  static async start(lab: Lab, host: string, opts: { name: string; network: string; target: string; intervalMs: number }): Promise<PingFlow> {
    await lab.exec(host, ["docker", "rm", "-f", opts.name]);
    await lab.runContainer(host, opts.name, ["--network", opts.network, lab.image, "ping", "-i", String(opts.intervalMs / 1000), "-W", "1", opts.target]);
    return new PingFlow(lab, host, opts.name, opts.intervalMs);
  }

  /** Stops the ping (SIGINT: it prints its summary) and reads what it saw. */
  async stop(): Promise<FlowReport> {
    await this.lab.execOk(this.host, ["docker", "kill", "--signal", "INT", this.name]);
    await this.lab.exec(this.host, ["docker", "wait", this.name], { timeoutMs: 15_000 });
    const logs = await this.lab.execOk(this.host, ["docker", "logs", "-t", this.name]);
    await this.lab.exec(this.host, ["docker", "rm", "-f", this.name]);
    return parsePingLog(logs);
  }
}

/** Parses `docker logs -t` of busybox ping: "<RFC3339> 64 bytes from …: seq=N ttl=… time=… ms". */
export function parsePingLog(text: string): FlowReport {
  const replies = new Map<number, number>();
  let summary = "";
  for (const line of text.split("\n")) {
    const m = /^(\S+) .*\bseq=(\d+)\b/.exec(line);
    if (m) {
      const seq = Number(m[2]);
      if (!replies.has(seq)) replies.set(seq, Date.parse(m[1]!));
    }
    if (/packets transmitted/.test(line)) summary = line.replace(/^\S+ /, "").trim();
  }
  const seqs = [...replies.keys()].sort((a, b) => a - b);
  const max = seqs.at(-1) ?? -1;
  const lost: number[] = [];
  const lostAt: number[] = [];
  for (let s = 0; s <= max; s++) {
    if (replies.has(s)) continue;
    lost.push(s);
    const before = seqs.filter((x) => x < s).at(-1);
    const after = seqs.find((x) => x > s);
    const tb = before === undefined ? undefined : replies.get(before)!;
    const ta = after === undefined ? undefined : replies.get(after)!;
    lostAt.push(tb !== undefined && ta !== undefined && after !== undefined && before !== undefined ? tb + ((ta - tb) * (s - before)) / (after - before) : (tb ?? ta ?? 0));
  }
  return { sent: max + 1, received: replies.size, lost, lostAt, summary };
}
