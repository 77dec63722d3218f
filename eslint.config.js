// The lint's packages live in tools/test-deps (installed on demand by `npm run lint`), and so
// does the config, whose imports resolve there; patterns stay relative to this folder.
export { default } from "./tools/test-deps/eslint.config.js";
