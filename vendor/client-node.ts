// The parts of @kubernetes/client-node that dockmesh runs, as one module. tools/build.js
// replaces the compiled file with an esbuild bundle of them (minified, one file): the package
// itself is ~970 ES modules, and loading them cost ~60 MB of RSS and ~0.5 s of start-up, the
// bundle ~20 MB and ~0.1 s (docs/benchmarks.md, "Memory: the API client bundled"). Types come
// from the package as usual (`import type`), so only values are re-exported here.
export { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, ListWatch, V1MicroTime, Watch } from "@kubernetes/client-node";
