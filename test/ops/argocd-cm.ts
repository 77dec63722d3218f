// deploy/argocd/argocd-cm.yaml: the ConfigMap patch that installs the health checks in Argo CD,
// its Lua being exactly deploy/argocd/health-*.lua (this builds the expected text).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

export const HEALTH_SCRIPTS = { Machine: "health-machine.lua", MeshNetwork: "health-meshnetwork.lua" } as const;

export function luaOf(kind: keyof typeof HEALTH_SCRIPTS): string {
  return readFileSync(join(projectRoot, "deploy/argocd", HEALTH_SCRIPTS[kind]), "utf8");
}

const indent = (text: string) =>
  text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => (l ? `    ${l}` : ""))
    .join("\n");

/** The argocd-cm patch as it must be in deploy/argocd/argocd-cm.yaml. */
export function argocdCmYaml(): string {
  return [
    "# Argo CD health checks for dockmesh's Machine and MeshNetwork (the Lua of health-machine.lua and",
    "# health-meshnetwork.lua beside this file; test/ops/argocd.test.ts keeps them identical).",
    "# Merge into Argo CD's argocd-cm:",
    "#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm.yaml",
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata:",
    "  name: argocd-cm",
    "  namespace: argocd",
    "  labels:",
    "    app.kubernetes.io/name: argocd-cm",
    "    app.kubernetes.io/part-of: argocd",
    "data:",
    "  resource.customizations.health.dockmesh.io_Machine: |",
    indent(luaOf("Machine")),
    "  resource.customizations.health.dockmesh.io_MeshNetwork: |",
    indent(luaOf("MeshNetwork")),
    "",
  ].join("\n");
}
