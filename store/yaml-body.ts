// YAML request bodies (application/yaml) are parsed in a worker thread with a time budget, so one
// request cannot stall the event loop that answers every other client (a 289 KB body once held it
// for 42 s). At most a few parses run at once; each worker's heap is bounded.
import { Worker } from "node:worker_threads";
import { ApiError } from "./errors.js";
import type { YamlJob, YamlResult } from "./yaml-worker.js";

export interface YamlLimits {
  /** Wall-clock budget of one parse (default 2000 ms). */
  budgetMs: number;
  /** Values (map and sequence entries, scalars) in one body (default 200,000). */
  maxNodes: number;
  /** Nesting depth (default 1000). */
  maxDepth: number;
  /** Alias dereferences (default 100, the yaml package's own default). */
  maxAliases: number;
  /** Parses at once; more get 429 (default 2). */
  maxConcurrent: number;
}

export const defaultYamlLimits: YamlLimits = { budgetMs: 2000, maxNodes: 200_000, maxDepth: 1000, maxAliases: 100, maxConcurrent: 2 };

export class YamlBodyParser {
  private running = 0;

  constructor(private readonly limits: YamlLimits = defaultYamlLimits) {}

  async parse(text: string): Promise<unknown> {
    if (this.running >= this.limits.maxConcurrent) {
      throw new ApiError(429, "TooManyRequests", `too many YAML request bodies are being parsed at once (${this.limits.maxConcurrent}); retry, or send the object as JSON`);
    }
    this.running++;
    try {
      const result = await this.run(text);
      if (!result.ok) {
        if (result.tooLarge) throw new ApiError(413, "RequestEntityTooLarge", `YAML request body too complex: ${result.message}`);
        throw new ApiError(400, "BadRequest", `error decoding YAML: ${result.message}`);
      }
      return JSON.parse(result.json);
    } finally {
      this.running--;
    }
  }

  private run(text: string): Promise<YamlResult> {
    const { maxNodes, maxDepth, maxAliases, budgetMs } = this.limits;
    const job: YamlJob = { text, maxNodes, maxDepth, maxAliases };
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL("./yaml-worker.js", import.meta.url), { workerData: job, resourceLimits: { maxOldGenerationSizeMb: 256 } });
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        void worker.terminate();
        f();
      };
      const timer = setTimeout(() => {
        finish(() => reject(new ApiError(413, "RequestEntityTooLarge", `YAML request body too complex: not parsed within ${budgetMs} ms; send it as JSON or make it smaller`)));
      }, budgetMs);
      worker.once("message", (r: YamlResult) => finish(() => resolve(r)));
      worker.once("error", (err: NodeJS.ErrnoException) => {
        // Past its heap limit the worker dies with ERR_WORKER_OUT_OF_MEMORY: the body's fault.
        const e =
          err.code === "ERR_WORKER_OUT_OF_MEMORY"
            ? new ApiError(413, "RequestEntityTooLarge", `YAML request body too complex: ${err.message}`, undefined, { cause: err })
            : new ApiError(500, "InternalError", `YAML parser failed: ${err.message}`, undefined, { cause: err });
        finish(() => reject(e));
      });
      worker.once("exit", (code) => finish(() => reject(new ApiError(500, "InternalError", `YAML parser exited with code ${code}`))));
    });
  }
}
