// Just enough IPv4 arithmetic for the lab's /24 blocks.

export interface Block24 {
  /** First three octets, e.g. [198, 18, 2]. */
  octets: readonly [number, number, number];
}

const OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

export function parseBlock24(cidr: string): Block24 {
  const m = /^(\d+)\.(\d+)\.(\d+)\.0\/24$/.exec(cidr);
  if (!m || !m.slice(1, 4).every((o) => OCTET.test(o))) {
    throw new Error(`"${cidr}" is not an IPv4 /24 block like 198.18.2.0/24`);
  }
  return { octets: [Number(m[1]), Number(m[2]), Number(m[3])] };
}

/** Address number `host` (1-254) inside the block. */
export function addr(block: Block24, host: number): string {
  if (!Number.isInteger(host) || host < 1 || host > 254) throw new Error(`host number ${host} is outside 1-254`);
  return `${block.octets.join(".")}.${host}`;
}

export function cidrOf(block: Block24): string {
  return `${block.octets.join(".")}.0/24`;
}

/** Inside 198.18.0.0/15, the benchmarking range the lab keeps all its traffic in. */
export function inLabRange(block: Block24): boolean {
  return block.octets[0] === 198 && (block.octets[1] === 18 || block.octets[1] === 19);
}
