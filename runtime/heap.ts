// Heap sizing for the long-running commands (`dockmesh controller`, `dockmesh up`).
//
// On a host with memory to spare, V8 lets the old generation grow to several times its live
// data between full collections: in bench/scale, a controller with 100 simulated machines and
// about 60 MB live peaked at 266 MB RSS. A controller should stay near what it uses, so the
// old generation grows by HEAP_GROWING_PERCENT over live data after each full collection.
// The young generation cannot be sized once the process runs: the image's ENTRYPOINT sets
// `--max-semi-space-size` (Dockerfile; the controller's garbage is short-lived, per reconcile).
import v8 from "node:v8";

export const HEAP_GROWING_PERCENT = 30;

/** Node flags of the image's ENTRYPOINT (the Dockerfile; test/ops/image.test.ts checks they agree). */
export const IMAGE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/**
 * Environment of the image (the Dockerfile's ENV; test/ops/image.test.ts checks they agree). Two
 * glibc malloc arenas instead of up to eight per core: the process's native memory (OpenSSL for
 * thousands of SSH sessions, buffers) stays in fewer, less fragmented heaps. At 1,000 simulated
 * machines the controller's peak RSS was 357 MB with it, 386 MB without (docs/benchmarks.md),
 * for the same CPU. It must be set before the process starts: `dockmesh up` run by hand can take
 * it from the shell.
 */
export const IMAGE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

/** Sets V8's heap growing factor, unless node was started with one (`node --heap-growing-percent=N`). */
export function keepHeapNearLive(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a.startsWith("--heap-growing-percent") || a.startsWith("--heap_growing_percent"))) return false;
  // V8 reads this flag at every full collection, so setting it at run time takes effect (and is
  // one of the few flags for which v8.setFlagsFromString is safe: nothing was sized from it yet).
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
