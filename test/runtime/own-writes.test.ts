import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { OwnWrites } from "../../runtime/own-writes.js";

const obj = (rv: string, extra: Record<string, unknown> = {}): KubernetesObject => ({ metadata: { name: "m1", namespace: "default", resourceVersion: rv, ...extra } });

test("OwnWrites: the cache's older copy is patched over by the write's answer, kept without managedFields; a newer cache wins", () => {
  const own = new OwnWrites<KubernetesObject>();
  own.wrote("default/m1", "1", obj("2", { managedFields: [{ manager: "dockmesh", operation: "Update", fieldsType: "FieldsV1", fieldsV1: { "f:status": {} } }] }));
  const fresh = own.fresh("default/m1", obj("1"));
  assert.equal(fresh.metadata?.resourceVersion, "2");
  assert.equal(fresh.metadata?.managedFields, undefined);
  assert.equal(own.size, 1);
  assert.equal(own.fresh("default/m1", obj("3")).metadata?.resourceVersion, "3");
  assert.equal(own.size, 0);
});

test("OwnWrites: once the informer cached the write's answer, it is no longer kept; an older version cached changes nothing", () => {
  const own = new OwnWrites<KubernetesObject>();
  own.wrote("default/m1", "1", obj("2"));
  own.cached("default/m1", "1");
  assert.equal(own.size, 1);
  assert.equal(own.fresh("default/m1", obj("1")).metadata?.resourceVersion, "2");
  own.cached("default/m1", "2");
  assert.equal(own.size, 0);
  assert.equal(own.fresh("default/m1", obj("2")).metadata?.resourceVersion, "2");
});
