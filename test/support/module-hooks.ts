// Module hooks (registered by test/support/module-recorder.ts, run on Node's loader thread):
// appends the URL of every module loaded through the ESM loader to the file given at registration.
import { appendFileSync } from "node:fs";
import type { InitializeHook, LoadHook } from "node:module";

let out = "";

export const initialize: InitializeHook<{ out: string }> = (data) => {
  out = data.out;
};

export const load: LoadHook = (url, context, nextLoad) => {
  appendFileSync(out, `${url}\n`);
  return nextLoad(url, context);
};
