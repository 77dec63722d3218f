// Relay choice for pairs of machines that are both behind NAT (neither has an endpoint):
// consistent hashing on a ring of the candidate relays (the healthy public machines), each
// placed at RING_POINTS points. Deterministic, spreads pairs evenly, and when a relay goes away
// only the pairs it carried move. A choice is a binary search on the ring, so relaying every
// NAT'd pair of a mesh costs O(pairs · log candidates) rather than O(pairs · candidates): with
// rendezvous hashing (one hash per candidate per pair) the whole-mesh plan grew as N³.

/** Points per candidate: each relay's share stays within about ±30 % of 1/candidates for tens of relays (test/unit/plan.test.ts). */
const RING_POINTS = 64;

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so nearby strings land far apart. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Points and owners packed as point·2^20 + owner index: one numeric sort orders both. */
const OWNER_BITS = 2 ** 20;

interface Ring {
  /** Candidates, sorted and without repeats; owners index into it. */
  names: string[];
  /** Packed (point, owner), ascending. */
  slots: Float64Array;
}

function buildRing(mesh: string, candidates: readonly string[]): Ring {
  const names = [...new Set(candidates)].sort();
  if (names.length >= OWNER_BITS) throw new RangeError(`relay candidates: ${names.length} is more than ${OWNER_BITS - 1}`);
  const slots = new Float64Array(names.length * RING_POINTS);
  names.forEach((name, owner) => {
    const base = hash32(`${mesh}\0${name}`);
    for (let i = 0; i < RING_POINTS; i++) slots[owner * RING_POINTS + i] = fmix32(base + Math.imul(i + 1, 0x9e3779b9)) * OWNER_BITS + owner;
  });
  slots.sort();
  return { names, slots };
}

// A planner call passes the same candidate array for every pair of a mesh: build its ring once.
// Keyed by the array itself, so callers must not change an array after passing it.
const rings = new WeakMap<readonly string[], Map<string, Ring>>();

function ringFor(mesh: string, candidates: readonly string[]): Ring {
  let byMesh = rings.get(candidates);
  if (!byMesh) rings.set(candidates, (byMesh = new Map<string, Ring>()));
  let ring = byMesh.get(mesh);
  if (!ring) byMesh.set(mesh, (ring = buildRing(mesh, candidates)));
  return ring;
}

/** The relay for the pair (a, b), or undefined when there is no candidate. Symmetric in a and b. */
export function chooseRelay(mesh: string, a: string, b: string, candidates: readonly string[]): string | undefined {
  const [x, y] = a < b ? [a, b] : [b, a];
  const { names, slots } = ringFor(mesh, candidates);
  if (slots.length === 0) return undefined;
  // First slot at or after the pair's point (the lowest possible packing of that point).
  const target = hash32(`${mesh}\0${x}\0${y}`) * OWNER_BITS;
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slots[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  // Walk clockwise past the pair's own machines (a relay is never one of the two ends).
  for (let k = 0; k < slots.length; k++) {
    const name = names[slots[(lo + k) % slots.length]! % OWNER_BITS]!;
    if (name !== x && name !== y) return name;
  }
  return undefined;
}
