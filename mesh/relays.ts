// Relay choice for pairs of machines that are both behind NAT (neither has an endpoint):
// rendezvous (highest-random-weight) hashing over the healthy public machines. Deterministic,
// spreads pairs evenly, and when a relay goes away only the pairs it carried move.
import { createHash } from "node:crypto";

function weight(mesh: string, a: string, b: string, candidate: string): bigint {
  return createHash("sha256").update(`${mesh}\0${a}\0${b}\0${candidate}`).digest().readBigUInt64BE(0);
}

/** The relay for the pair (a, b), or undefined when there is no candidate. Symmetric in a and b. */
export function chooseRelay(mesh: string, a: string, b: string, candidates: readonly string[]): string | undefined {
  const [x, y] = a < b ? [a, b] : [b, a];
  let best: string | undefined;
  let bestWeight = -1n;
  for (const c of candidates) {
    if (c === x || c === y) continue;
    const w = weight(mesh, x, y, c);
    if (w > bestWeight || (w === bestWeight && best !== undefined && c < best)) {
      best = c;
      bestWeight = w;
    }
  }
  return best;
}
