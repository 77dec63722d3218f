// Request bodies in Kubernetes protobuf ("application/vnd.kubernetes.protobuf"): kubectl's typed
// clients send them for `kubectl create namespace|secret|configmap|serviceaccount` and for the
// access reviews of `kubectl auth can-i`. Decoded into
// the JSON form for the kinds those commands create; responses are always JSON (clients accept it).
import { badRequest } from "./errors.js";

type Kind = "string" | "bytes" | "int" | "bool" | "time" | "microtime" | "msg" | "mapString" | "mapBytes";
interface Field {
  name: string;
  kind: Kind;
  repeated?: boolean;
  msg?: Schema;
}
type Schema = Record<number, Field>;

const ownerReference: Schema = {
  1: { name: "kind", kind: "string" },
  3: { name: "name", kind: "string" },
  4: { name: "uid", kind: "string" },
  5: { name: "apiVersion", kind: "string" },
  6: { name: "controller", kind: "bool" },
  7: { name: "blockOwnerDeletion", kind: "bool" },
};

const objectMeta: Schema = {
  1: { name: "name", kind: "string" },
  2: { name: "generateName", kind: "string" },
  3: { name: "namespace", kind: "string" },
  4: { name: "selfLink", kind: "string" },
  5: { name: "uid", kind: "string" },
  6: { name: "resourceVersion", kind: "string" },
  7: { name: "generation", kind: "int" },
  8: { name: "creationTimestamp", kind: "time" },
  9: { name: "deletionTimestamp", kind: "time" },
  10: { name: "deletionGracePeriodSeconds", kind: "int" },
  11: { name: "labels", kind: "mapString" },
  12: { name: "annotations", kind: "mapString" },
  13: { name: "ownerReferences", kind: "msg", repeated: true, msg: ownerReference },
  14: { name: "finalizers", kind: "string", repeated: true },
};

const objectReference: Schema = {
  1: { name: "kind", kind: "string" },
  2: { name: "namespace", kind: "string" },
  3: { name: "name", kind: "string" },
  4: { name: "uid", kind: "string" },
  5: { name: "apiVersion", kind: "string" },
  6: { name: "resourceVersion", kind: "string" },
  7: { name: "fieldPath", kind: "string" },
};

const meta: Field = { name: "metadata", kind: "msg", msg: objectMeta };

const kinds: Record<string, Schema> = {
  "v1/Namespace": {
    1: meta,
    2: { name: "spec", kind: "msg", msg: { 1: { name: "finalizers", kind: "string", repeated: true } } },
    3: { name: "status", kind: "msg", msg: { 1: { name: "phase", kind: "string" } } },
  },
  "v1/Secret": {
    1: meta,
    2: { name: "data", kind: "mapBytes" },
    3: { name: "type", kind: "string" },
    4: { name: "stringData", kind: "mapString" },
    5: { name: "immutable", kind: "bool" },
  },
  "v1/ConfigMap": {
    1: meta,
    2: { name: "data", kind: "mapString" },
    3: { name: "binaryData", kind: "mapBytes" },
    4: { name: "immutable", kind: "bool" },
  },
  "v1/ServiceAccount": {
    1: meta,
    2: { name: "secrets", kind: "msg", repeated: true, msg: objectReference },
    3: { name: "imagePullSecrets", kind: "msg", repeated: true, msg: { 1: { name: "name", kind: "string" } } },
    4: { name: "automountServiceAccountToken", kind: "bool" },
  },
  "authorization.k8s.io/v1/SelfSubjectAccessReview": {
    1: meta,
    2: {
      name: "spec",
      kind: "msg",
      msg: {
        1: {
          name: "resourceAttributes",
          kind: "msg",
          msg: {
            1: { name: "namespace", kind: "string" },
            2: { name: "verb", kind: "string" },
            3: { name: "group", kind: "string" },
            4: { name: "version", kind: "string" },
            5: { name: "resource", kind: "string" },
            6: { name: "subresource", kind: "string" },
            7: { name: "name", kind: "string" },
          },
        },
        2: { name: "nonResourceAttributes", kind: "msg", msg: { 1: { name: "path", kind: "string" }, 2: { name: "verb", kind: "string" } } },
      },
    },
  },
  "authorization.k8s.io/v1/SelfSubjectRulesReview": {
    1: meta,
    2: { name: "spec", kind: "msg", msg: { 1: { name: "namespace", kind: "string" } } },
  },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  eof(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    while (true) {
      if (this.pos >= this.buf.length) throw new Error("truncated varint");
      const b = this.buf[this.pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new Error("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function signed64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

const zeroTime = "1970-01-01T00:00:00Z";

function decodeTime(buf: Buffer, micro: boolean): string {
  const r = new Reader(buf);
  let seconds = 0;
  let nanos = 0;
  while (!r.eof()) {
    const tag = Number(r.varint());
    if (tag >> 3 === 1 && (tag & 7) === 0) seconds = signed64(r.varint());
    else if (tag >> 3 === 2 && (tag & 7) === 0) nanos = signed64(r.varint());
    else r.skip(tag & 7);
  }
  const iso = new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, "");
  return micro ? `${iso}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}Z` : `${iso}Z`;
}

function decodeMapEntry(buf: Buffer, bytesValue: boolean): [string, string] {
  const r = new Reader(buf);
  let k = "";
  let v = "";
  while (!r.eof()) {
    const tag = Number(r.varint());
    const f = tag >> 3;
    if (f === 1 && (tag & 7) === 2) k = r.bytes().toString("utf8");
    else if (f === 2 && (tag & 7) === 2) {
      const b = r.bytes();
      v = bytesValue ? b.toString("base64") : b.toString("utf8");
    } else r.skip(tag & 7);
  }
  return [k, v];
}

function decodeMessage(buf: Buffer, schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.eof()) {
    const tag = Number(r.varint());
    const num = tag >> 3;
    const wire = tag & 7;
    const f = schema[num];
    if (!f) {
      r.skip(wire);
      continue;
    }
    let v: unknown;
    switch (f.kind) {
      case "string":
        v = r.bytes().toString("utf8");
        break;
      case "bytes":
        v = r.bytes().toString("base64");
        break;
      case "int":
        v = signed64(r.varint());
        break;
      case "bool":
        v = r.varint() !== 0n;
        break;
      case "time":
      case "microtime":
        v = decodeTime(r.bytes(), f.kind === "microtime");
        break;
      case "msg":
        v = decodeMessage(r.bytes(), f.msg ?? {});
        break;
      case "mapString":
      case "mapBytes": {
        const [k, val] = decodeMapEntry(r.bytes(), f.kind === "mapBytes");
        const m = (out[f.name] ?? {}) as Record<string, string>;
        m[k] = val;
        out[f.name] = m;
        continue;
      }
    }
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(v);
    // Go's generated marshallers write zero values of non-pointer fields; JSON would omit them.
    else if (v !== "" && v !== 0 && v !== zeroTime) out[f.name] = v;
  }
  return out;
}

const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a "k8s\0"-prefixed runtime.Unknown envelope holding one of the kinds above. */
export function decodeKubernetesProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(magic)) throw badRequest("protobuf body without the k8s\\0 prefix");
  try {
    const env = decodeMessage(body.subarray(4), {
      1: { name: "typeMeta", kind: "msg", msg: { 1: { name: "apiVersion", kind: "string" }, 2: { name: "kind", kind: "string" } } },
      2: { name: "raw", kind: "bytes" },
    });
    const tm = (env.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
    const schema = kinds[`${tm.apiVersion ?? ""}/${tm.kind ?? ""}`];
    if (!schema) {
      throw badRequest(`protobuf request bodies are supported for Namespace, Secret, ConfigMap, ServiceAccount and the access reviews only, not ${tm.apiVersion ?? "?"}/${tm.kind ?? "?"}; send JSON`);
    }
    const raw = Buffer.from(String(env.raw ?? ""), "base64");
    return { apiVersion: tm.apiVersion, kind: tm.kind, ...decodeMessage(raw, schema) };
  } catch (err) {
    if (err instanceof Error && err.name === "ApiError") throw err;
    throw badRequest(`cannot decode protobuf body: ${err instanceof Error ? err.message : String(err)}`);
  }
}
