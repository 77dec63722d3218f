// Flat config (loaded through /eslint.config.js): typescript-eslint's type-checked recommended rules on the
// TypeScript sources (they see types, so they catch a promise left floating or passed where a void callback goes);
// the plain .js files (bin/, test/run.js, this folder) have no types to check and get the untyped rules.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// This file lives in tools/test-deps/; the tsconfig.json the type-aware rules read is at the repository root.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "helm/", "deploy/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
      globals: { process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly", URL: "readonly", Buffer: "readonly" },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
      // node:test's test()/it()/describe() return promises its runner tracks itself: not floating.
      "@typescript-eslint/no-floating-promises": ["error", { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "it", "describe", "suite"] }] }],
      // Async stubs and predicates without an await implement Promise-returning interfaces; dropping `async` would turn their throws into sync throws.
      "@typescript-eslint/require-await": "off",
      // String(x) of an unknown JSON value is meant (the store echoes what it was sent, as the API server does); the rule flags every one.
      "@typescript-eslint/no-base-to-string": "off",
    },
  },
  {
    // Tests read API responses and library results as `any` on purpose (assert checks their shape).
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  { files: ["**/*.js", "**/*.mjs", "**/*.cjs"], ...tseslint.configs.disableTypeChecked },
);
