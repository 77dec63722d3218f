// import() of a package installed in tools/test-deps/node_modules (bare names resolve from
// this file's folder): test/ops/k8s-schema.ts loads kubernetes-models through it.
export function load(specifier) {
  return import(specifier);
}
