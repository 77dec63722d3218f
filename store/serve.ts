// The store alone, without the controllers `dockmesh up` adds: `node dist/store/serve.js
// --state-dir DIR [--listen HOST:PORT] [--unsafe-no-fsync]`. Used by the store's durability test and
// benchmarks. --unsafe-no-fsync acknowledges writes before their fdatasync: a power cut can lose them.
import { parseArgs } from "node:util";
import { isLoopback, parseListen, startStore } from "./server.js";

const { values } = parseArgs({ options: { "state-dir": { type: "string" }, listen: { type: "string", default: "127.0.0.1:6443" }, "unsafe-no-fsync": { type: "boolean", default: false } } });
const stateDir = values["state-dir"];
if (!stateDir) {
  console.error("usage: node dist/store/serve.js --state-dir DIR [--listen HOST:PORT] [--unsafe-no-fsync]");
  process.exit(2);
}
const listen = values.listen ?? "127.0.0.1:6443";
const unsafeNoFsync = values["unsafe-no-fsync"] === true;
const store = await startStore({ stateDir, listen, allowNonLoopback: !isLoopback(parseListen(listen).host), unsafeNoFsync });
if (unsafeNoFsync) console.log("store: --unsafe-no-fsync: writes are acknowledged before fdatasync; a power cut or OS crash can lose acknowledged writes");
console.log(`store: API server ${store.url} ready`);
console.log(`  export KUBECONFIG=${store.kubeconfigPath}`);
const stop = () => {
  store.close().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
