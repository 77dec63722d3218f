// Checks a manifest the way the API server would before `dockmesh plan` trusts it.
export interface Problem {
  field: string;
  message: string;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IGNORED = new Set(["v1/Secret", "v1/ConfigMap", "v1/Namespace"]);

export function checkManifest(obj: Record<string, unknown>): Problem[] | "ignore" {
  const gvk = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  if (IGNORED.has(gvk)) return "ignore";
  if (gvk !== "dockmesh.io/v1alpha1/Machine" && gvk !== "dockmesh.io/v1alpha1/MeshNetwork") {
    return [{ field: "kind", message: `${gvk} is not a dockmesh kind; expected apiVersion dockmesh.io/v1alpha1 with kind Machine or MeshNetwork` }];
  }
  const meta = obj.metadata as Record<string, unknown> | undefined;
  const name = meta?.name;
  if (typeof name !== "string" || name === "") return [{ field: "metadata.name", message: "Required value: every object needs a name" }];
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return [{ field: "metadata.name", message: `Invalid value ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` }];
  }
  if (typeof obj.spec !== "object" || obj.spec === null) return [{ field: "spec", message: "Required value" }];
  return [];
}
