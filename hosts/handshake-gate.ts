// How many SSH handshakes go to one bastion at once. sshd's default MaxStartups (10:30:100)
// drops unauthenticated connections beyond 10 at random, and every Machine behind a bastion
// opens its own connection to it: with --concurrency above 10, a fleet behind one bastion
// would see random "connection closed during the handshake" failures. Only the handshake is
// gated; authenticated sessions do not count against MaxStartups.

/** Handshakes in flight to one bastion at most. */
export const MAX_BASTION_HANDSHAKES = 8;

interface Gate {
  busy: number;
  waiters: Array<() => void>;
}

const gates = new Map<string, Gate>();

/** Runs `fn` (a handshake with `endpoint`, "host:port") once fewer than `max` run for it. */
export async function gatedHandshake<T>(endpoint: string, fn: () => Promise<T>, max = MAX_BASTION_HANDSHAKES): Promise<T> {
  let g = gates.get(endpoint);
  if (!g) gates.set(endpoint, (g = { busy: 0, waiters: [] }));
  const gate = g;
  if (gate.busy >= max) await new Promise<void>((resolve) => gate.waiters.push(resolve));
  else gate.busy++;
  try {
    return await fn();
  } finally {
    const next = gate.waiters.shift();
    // The slot passes straight to the next waiter; an idle gate is dropped (the map stays bounded by the bastions in use).
    if (next) next();
    else if (--gate.busy === 0) gates.delete(endpoint);
  }
}

/** Gates currently held (for tests). */
export function gatesInUse(): number {
  return gates.size;
}
