// authorization.k8s.io/v1 SelfSubjectAccessReview and SelfSubjectRulesReview (`kubectl auth can-i`,
// `kubectl auth can-i --list`), answered as the store enforces access: a request reaches this code
// only with the store's one bearer token, and that token may do everything (cluster-admin), so
// every review is allowed and the rules are "*".
import { badRequest, cause, invalid } from "./errors.js";
import { isPlainObject } from "./validation.js";

export const authorizationGroup = "authorization.k8s.io";
export const authorizationVersion = "v1";

/** Discovery entries: create-only, cluster-scoped, as kube-apiserver lists them. */
export const reviewResources = [
  { name: "selfsubjectaccessreviews", singularName: "selfsubjectaccessreview", namespaced: false, kind: "SelfSubjectAccessReview", verbs: ["create"] },
  { name: "selfsubjectrulesreviews", singularName: "selfsubjectrulesreview", namespaced: false, kind: "SelfSubjectRulesReview", verbs: ["create"] },
];

const reason = "dockmesh store: the bearer token is the store's only identity and may do everything";

/** Answers a POST of a review to /apis/authorization.k8s.io/v1/<plural>; undefined for another plural. */
export function answerReview(plural: string, body: unknown): Record<string, unknown> | undefined {
  const r = reviewResources.find((x) => x.name === plural);
  if (!r) return undefined;
  if (!isPlainObject(body)) throw badRequest(`the object provided is unrecognized (create): expected a ${r.kind}`);
  if (body.kind !== undefined && body.kind !== r.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${r.kind})`);
  const spec = isPlainObject(body.spec) ? body.spec : {};
  const out = { kind: r.kind, apiVersion: `${authorizationGroup}/${authorizationVersion}`, metadata: { creationTimestamp: null }, spec };
  if (r.kind === "SelfSubjectAccessReview") {
    const res = spec.resourceAttributes !== undefined && spec.resourceAttributes !== null;
    const nonRes = spec.nonResourceAttributes !== undefined && spec.nonResourceAttributes !== null;
    if (res === nonRes) {
      throw invalid(authorizationGroup, r.kind, "", [
        cause("FieldValueInvalid", "spec.resourceAttributes", "exactly one of nonResourceAttributes or resourceAttributes must be specified", { v: spec.resourceAttributes ?? null }),
      ]);
    }
    return { ...out, status: { allowed: true, reason } };
  }
  return {
    ...out,
    status: {
      resourceRules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }],
      nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
      incomplete: false,
    },
  };
}
