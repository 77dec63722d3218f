// The kinds the store serves: built-ins (store/builtins.ts) and those of CustomResourceDefinitions,
// registered live when a CRD is created, changed or deleted.
import type { CustomResourceDefinition, JSONSchemaProps } from "../api/crd-schema.js";
import type { NameRule } from "./validation.js";

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Has a /status subresource: the main endpoint ignores status, /status ignores the rest. */
  statusSubresource: boolean;
  /** openAPIV3Schema of the whole object (validation, pruning, defaults, OpenAPI, explain). */
  schema: JSONSchemaProps;
  /** additionalPrinterColumns of a CRD; built-ins have their own table in store/table.ts. */
  printerColumns?: PrinterColumn[];
  /** Built-in kinds accept strategic merge patch and unconditional PUT; custom resources do not. */
  builtin: boolean;
  /** metadata.generation is maintained (custom resources, CRDs). */
  generation: boolean;
  nameRule: NameRule;
  /** Storage key shared by every version of the kind: "<group>/<plural>". */
  key: string;
  /** The CRD that defines this kind, if any. */
  crdName?: string;
  /** Extra field selectors beyond metadata.name/metadata.namespace: label → value getter. */
  fieldSelectors?: Record<string, (obj: Record<string, unknown>) => string>;
}

export function apiVersionOf(rt: Pick<ResourceType, "group" | "version">): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

export class Registry {
  private readonly byGvr = new Map<string, ResourceType>();
  private changeListeners: Array<() => void> = [];

  add(rt: ResourceType): void {
    this.byGvr.set(`${rt.group}/${rt.version}/${rt.plural}`, rt);
    this.changed();
  }

  onChange(fn: () => void): void {
    this.changeListeners.push(fn);
  }

  private changed(): void {
    for (const fn of this.changeListeners) fn();
  }

  get(group: string, version: string, plural: string): ResourceType | undefined {
    return this.byGvr.get(`${group}/${version}/${plural}`);
  }

  /** Every version of the kind stored under `key`. */
  versionsOf(key: string): ResourceType[] {
    return [...this.byGvr.values()].filter((rt) => rt.key === key);
  }

  all(): ResourceType[] {
    return [...this.byGvr.values()];
  }

  /** Replaces the kinds defined by CRD `crdName` with `types` (empty to remove them). */
  setCrdTypes(crdName: string, types: ResourceType[]): void {
    for (const [k, rt] of this.byGvr) if (rt.crdName === crdName) this.byGvr.delete(k);
    for (const rt of types) this.byGvr.set(`${rt.group}/${rt.version}/${rt.plural}`, rt);
    this.changed();
  }

  /** Group → versions (preferred first), core group "" included. */
  groups(): Array<{ group: string; versions: string[] }> {
    const m = new Map<string, Set<string>>();
    for (const rt of this.byGvr.values()) {
      let s = m.get(rt.group);
      if (!s) m.set(rt.group, (s = new Set()));
      s.add(rt.version);
    }
    return [...m.entries()].sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))).map(([group, vs]) => ({ group, versions: [...vs].sort(compareVersions) }));
  }

  resources(group: string, version: string): ResourceType[] {
    return [...this.byGvr.values()].filter((rt) => rt.group === group && rt.version === version).sort((a, b) => a.plural.localeCompare(b.plural));
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first (v2 > v1 > v1beta2 > v1beta1 > v1alpha1). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [-1, 0, 0];
    const stage = m[2] === "alpha" ? 0 : m[2] === "beta" ? 1 : 2;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pb[i] ?? 0) - (pa[i] ?? 0);
  return a.localeCompare(b);
}

/** The kinds a CRD defines: one ResourceType per served version. */
export function typesFromCrd(crd: CustomResourceDefinition): ResourceType[] {
  const s = crd.spec;
  return s.versions
    .filter((v) => v.served)
    .map((v) => {
      const rt: ResourceType = {
        group: s.group,
        version: v.name,
        kind: s.names.kind,
        listKind: s.names.listKind ?? `${s.names.kind}List`,
        plural: s.names.plural,
        singular: s.names.singular ?? s.names.kind.toLowerCase(),
        namespaced: s.scope === "Namespaced",
        shortNames: s.names.shortNames ?? [],
        categories: s.names.categories ?? [],
        statusSubresource: v.subresources?.status !== undefined,
        schema: v.schema?.openAPIV3Schema ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true },
        printerColumns: v.additionalPrinterColumns ?? [],
        builtin: false,
        generation: true,
        nameRule: "subdomain",
        key: `${s.group}/${s.names.plural}`,
        crdName: crd.metadata.name,
      };
      return rt;
    });
}

/** The version objects of a kind are stored at (the CRD's storage version). */
export function storageVersionOf(crd: CustomResourceDefinition): string {
  return (crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0])?.name ?? "v1";
}
