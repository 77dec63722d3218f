// A store in its own process, for the security tests that load it: the test's clients then measure
// the server's event loop, not their own. argv[2]: StoreOptions as JSON. Prints one JSON line
// (url, token, CA, kubeconfig) when ready; SIGTERM stops it.
import { startStore, type StoreOptions } from "../../store/server.js";

const store = await startStore(JSON.parse(process.argv[2] ?? "{}") as StoreOptions);
console.log(JSON.stringify({ url: store.url, token: store.token, caCertPem: store.caCertPem, kubeconfigPath: store.kubeconfigPath }));
process.once("SIGTERM", () => {
  store.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
