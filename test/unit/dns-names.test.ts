// mesh/dns-names.ts and mesh/dns-records.ts: what a host reports is data; only DNS labels are
// published, only addresses inside the reporting machine's subnet, in a deterministic file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dnsLabelOf } from "../../mesh/dns-names.js";
import { RECORD_LIMITS, renderRecords, type ReportedContainer } from "../../mesh/dns-records.js";

test("names: normalisation and refusals", () => {
  const table: Array<[string, string | RegExp]> = [
    ["/web", "web"],
    ["Web_App.v2", "web-app-v2"],
    ["api", "api"],
    ["a", "a"],
    ["x".repeat(63), "x".repeat(63)],
    ["x".repeat(64), /at most 63/],
    ["evil\naddress=/#/6.6.6.6", /control character \(U\+000A\)/],
    ["cr\rx", /U\+000D/],
    ["has space", /contains " "/],
    ["a#b", /contains "#"/],
    ["ünïcode", /contains "ü"/],
    ["\u212Aelvin", /contains/], // Kelvin sign: toLowerCase() would make it an ASCII k
    ["bad_", /starts or ends with "-"/],
    ["-lead", /starts or ends/],
    ["/", /is empty/],
    ["", /is empty/],
    ["//x", /contains "\/"/],
    ["a/b", /contains "\/"/],
    ["10.0.0.1", "10-0-0-1"],
    ["x".repeat(300), /longer than 256/],
  ];
  for (const [raw, want] of table) {
    const r = dnsLabelOf(raw);
    if (typeof want === "string") assert.deepEqual(r, { ok: true, label: want }, JSON.stringify(raw));
    else {
      assert.equal(r.ok, false, JSON.stringify(raw));
      if (!r.ok) assert.match(r.reason, want, JSON.stringify(raw));
    }
  }
});

const id = (n: number) => n.toString(16).padStart(64, "a");
const c = (n: number, name: string, ip: string, aliases: string[] = [], service?: string): ReportedContainer => ({ id: id(n), name, ip, aliases, ...(service ? { service } : {}) });

test("records: golden file, sorted, deterministic whatever the input order", () => {
  const machines = [
    { machine: "h2", subnet: "10.1.2.0/24", containers: [c(3, "/db", "10.1.2.5", ["api", id(3).slice(0, 12)]), c(4, "/h1", "10.1.2.6")] },
    { machine: "h1", subnet: "10.1.1.0/24", containers: [c(2, "/web", "10.1.1.3", ["api"], "frontend"), c(1, "/Web_2", "10.1.1.2")] },
  ];
  const r = renderRecords("mesh.internal", machines);
  assert.equal(
    r.text,
    [
      "# Managed by dockmesh: zone mesh.internal",
      "10.1.1.3 api.mesh.internal",
      "10.1.2.5 api.mesh.internal",
      "10.1.2.5 db.h2.mesh.internal",
      "10.1.2.5 db.mesh.internal",
      "10.1.1.3 frontend.mesh.internal",
      "10.1.2.6 h1.h2.mesh.internal",
      "10.1.1.1 h1.mesh.internal",
      "10.1.2.1 h2.mesh.internal",
      "10.1.1.2 web-2.h1.mesh.internal",
      "10.1.1.2 web-2.mesh.internal",
      "10.1.1.3 web.h1.mesh.internal",
      "10.1.1.3 web.mesh.internal",
      "",
    ].join("\n"),
  );
  // The container named like a member machine keeps <container>.<machine> but not the machine's name.
  assert.deepEqual(
    r.skipped.map((s) => [s.machine, s.kind, s.name]),
    [["h2", "reserved", "/h1"]],
  );
  assert.deepEqual([...r.records].sort(), [
    ["h1", 6],
    ["h2", 4],
  ]);
  const again = renderRecords(
    "mesh.internal",
    [...machines].reverse().map((m) => ({ ...m, containers: [...m.containers].reverse() })),
  );
  assert.equal(again.text, r.text);
});

test("records: an address outside the reporting machine's subnet is dropped, and hostile names never make a line", () => {
  const r = renderRecords("z", [
    {
      machine: "h1",
      subnet: "10.1.1.0/24",
      containers: [
        c(1, "/steal", "10.1.2.7"), // h2's subnet
        c(2, "/gw", "10.1.1.1"), // the gateway
        c(3, "/bcast", "10.1.1.255"),
        c(4, "/net", "10.1.1.0"),
        c(5, "/junk", "10.1.1.5\n10.9.9.9 x"),
        c(6, "/ok", "10.1.1.9", ["evil\naddress=/#/6.6.6.6", "a b", "#x"], "svc\nserver=1.1.1.1"),
      ],
    },
  ]);
  assert.equal(r.text, "# Managed by dockmesh: zone z\n10.1.1.1 h1.z\n10.1.1.9 ok.h1.z\n10.1.1.9 ok.z\n");
  assert.deepEqual(
    r.skipped.map((s) => s.kind),
    ["address", "address", "address", "address", "address", "name", "name", "name", "name"],
  );
  for (const s of r.skipped) assert.doesNotMatch(s.reason, /\n/);
});

test("records: bounds on containers per machine and names per container", () => {
  const many = Array.from({ length: RECORD_LIMITS.containersPerMachine + 5 }, (_, i) => c(i, `/c${i}`, `10.2.${1 + (i >> 8)}.${i & 255 || 1}`));
  const r = renderRecords("z", [{ machine: "m", subnet: "10.2.0.0/16", containers: many }]);
  assert.ok(r.skipped.some((s) => s.kind === "limit" && /only the first 4096/.test(s.reason)));
  assert.ok((r.records.get("m") ?? 0) <= RECORD_LIMITS.containersPerMachine * 2);
  const aliases = Array.from({ length: 100 }, (_, i) => `a${i}`);
  const one = renderRecords("z", [{ machine: "m", subnet: "10.3.0.0/24", containers: [c(1, "/x", "10.3.0.2", aliases)] }]);
  // The container name and 31 aliases, plus x.m.z.
  assert.equal(one.records.get("m"), RECORD_LIMITS.namesPerContainer + 1);
});
