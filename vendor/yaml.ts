// The parts of yaml that dockmesh runs, as one module: tools/build.js replaces the compiled file
// with an esbuild bundle (yaml is 73 CommonJS files, and `dockmesh plan` spent ~65 ms of its
// ~300 ms resolving and compiling them; docs/benchmarks.md, "CLI start-up").
export { isMap, isScalar, isSeq, parse, parseAllDocuments, parseDocument, stringify } from "yaml";
export type { Node } from "yaml";
