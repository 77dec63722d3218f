// Legacy (unaggregated) discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>.
import { authorizationGroup, authorizationVersion, reviewResources } from "./access-review.js";
import { compareVersions, type Registry, type ResourceType } from "./registry.js";

const verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
}

function groupEntry(group: string, versions: string[]): Record<string, unknown> {
  const sorted = [...versions].sort(compareVersions);
  const gv = (v: string) => ({ groupVersion: `${group}/${v}`, version: v });
  return { name: group, versions: sorted.map(gv), preferredVersion: gv(sorted[0] ?? "v1") };
}

export function apiGroupList(registry: Registry): Record<string, unknown> {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: groupsOf(registry)
      .filter((g) => g.group !== "")
      .map((g) => groupEntry(g.group, g.versions)),
  };
}

/** The registry's groups plus authorization.k8s.io (access reviews, store/access-review.ts). */
function groupsOf(registry: Registry): Array<{ group: string; versions: string[] }> {
  const groups = registry.groups().filter((g) => g.group !== authorizationGroup);
  groups.push({ group: authorizationGroup, versions: [authorizationVersion] });
  return groups.sort((a, b) => (a.group === "" ? -1 : b.group === "" ? 1 : a.group.localeCompare(b.group)));
}

export function apiGroup(registry: Registry, group: string): Record<string, unknown> | undefined {
  const g = groupsOf(registry).find((x) => x.group === group);
  if (!g || group === "") return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...groupEntry(g.group, g.versions) };
}

function resourceEntries(rt: ResourceType): Array<Record<string, unknown>> {
  const main: Record<string, unknown> = {
    name: rt.plural,
    singularName: rt.singular,
    namespaced: rt.namespaced,
    kind: rt.kind,
    verbs,
  };
  if (rt.shortNames.length > 0) main.shortNames = rt.shortNames;
  if (rt.categories.length > 0) main.categories = rt.categories;
  const out = [main];
  if (rt.statusSubresource) out.push({ name: `${rt.plural}/status`, singularName: "", namespaced: rt.namespaced, kind: rt.kind, verbs: ["get", "patch", "update"] });
  return out;
}

export function apiResourceList(registry: Registry, group: string, version: string): Record<string, unknown> | undefined {
  if (group === authorizationGroup && version === authorizationVersion) {
    return { kind: "APIResourceList", apiVersion: "v1", groupVersion: `${group}/${version}`, resources: reviewResources };
  }
  const types = registry.resources(group, version);
  if (types.length === 0) return undefined;
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources: types.flatMap(resourceEntries),
  };
}
