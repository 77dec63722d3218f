// hosts/dns-inspect.ts and hosts/docker-events.ts parsers against hostile host output: only the
// asked networks, only well-formed values; anything else is dropped, never thrown on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseInspect } from "../../hosts/dns-inspect.js";
import { parseEventLine, READY_MARKER } from "../../hosts/docker-events.js";

const ID1 = "a".repeat(64);
const ID2 = "b".repeat(64);
const ctr = (id: string, name: string, nets: Record<string, unknown>, service: string | null = null) => JSON.stringify({ id, name, service, networks: nets });

test("inspect: a normal answer", () => {
  const out = [
    `net mesh ${ID1} ${ID2}`,
    ctr(ID1, "/web", { mesh: { IPAddress: "10.1.1.2", Aliases: ["api", "aaaaaaaaaaaa"] }, bridge: { IPAddress: "172.17.0.2" } }, "svc"),
    ctr(ID2, "/stopped", { mesh: { IPAddress: "", Aliases: null } }),
    "",
  ].join("\n");
  const r = parseInspect(out, ["mesh"]);
  assert.deepEqual([...r.networks], [["mesh", [{ id: ID1, name: "/web", ip: "10.1.1.2", aliases: ["api", "aaaaaaaaaaaa"], service: "svc" }]]]);
  assert.equal(r.dropped, 0);
});

test("inspect: hostile output is dropped", () => {
  const cases: Array<[string, string]> = [
    ["a network not asked for", `net other ${ID1}\n${ctr(ID1, "/x", { other: { IPAddress: "10.1.1.2" } })}`],
    ["an id that is not 64 hex", `net mesh ${ID1.slice(1)}Z\n${ctr(ID1, "/x", { mesh: { IPAddress: "10.1.1.2" } })}`],
    ["a container listed on no network", `net mesh\n${ctr(ID1, "/x", { mesh: { IPAddress: "10.1.1.2" } })}`],
    ["a name that is not a string", `net mesh ${ID1}\n${JSON.stringify({ id: ID1, name: 7, service: null, networks: { mesh: { IPAddress: "10.1.1.2" } } })}`],
    ["not JSON", `net mesh ${ID1}\n{"id":"${ID1}",`],
    ["an array", `net mesh ${ID1}\n[1,2]`],
    ["a prototype key", `net mesh ${ID1}\n${JSON.stringify({ id: ID1, name: "/x", service: null, networks: JSON.parse('{"__proto__":{"IPAddress":"10.1.1.2"}}') })}`],
    ["an over-long line", `net mesh ${ID1}\n${ctr(ID1, "/" + "x".repeat(70_000), { mesh: { IPAddress: "10.1.1.2" } })}`],
    ["aliases that are not a list", `net mesh ${ID1}\n${ctr(ID1, "/x", { mesh: { IPAddress: "10.1.1.2", Aliases: "api" } })}`],
  ];
  for (const [what, out] of cases) {
    const r = parseInspect(out, ["mesh"]);
    const list = r.networks.get("mesh") ?? [];
    assert.deepEqual(list, [], what);
  }
  // A duplicate network line cannot replace the first.
  const dup = parseInspect(`net mesh ${ID1}\nnet mesh ${ID2}\n${ctr(ID1, "/x", { mesh: { IPAddress: "10.1.1.2" } })}\n${ctr(ID2, "/y", { mesh: { IPAddress: "10.1.1.3" } })}`, ["mesh"]);
  assert.deepEqual(
    dup.networks.get("mesh")?.map((c) => c.name),
    ["/x"],
  );
  assert.equal(dup.dropped, 1);
  // Values pass through as data; names are checked where records are rendered.
  const odd = parseInspect(`net mesh ${ID1}\n${ctr(ID1, "/a\nb", { mesh: { IPAddress: "10.1.1.2", Aliases: ["x\ny", 5] } })}`, ["mesh"]);
  assert.deepEqual(odd.networks.get("mesh"), [{ id: ID1, name: "/a\nb", ip: "10.1.1.2", aliases: ["x\ny"] }]);
  // More aliases than the bound: the first 32.
  const many = parseInspect(`net mesh ${ID1}\n${ctr(ID1, "/x", { mesh: { IPAddress: "10.1.1.2", Aliases: Array.from({ length: 50 }, (_, i) => `a${i}`) } })}`, ["mesh"]);
  assert.equal(many.networks.get("mesh")?.[0]?.aliases.length, 32);
});

test("inspect: records files' digests, only for asked interfaces and only well-formed", () => {
  const SUM = "0123456789abcdef".repeat(4);
  const table: Array<[string, string, Array<[string, string]>]> = [
    ["one asked file", `records dm0 ${SUM}`, [["dm0", SUM]]],
    ["an interface not asked for", `records dm9 ${SUM}`, []],
    ["a digest that is not 64 hex", `records dm0 ${SUM.slice(1)}Z`, []],
    ["an upper-case digest", `records dm0 ${SUM.toUpperCase()}`, []],
    ["a word too many", `records dm0 ${SUM} x`, []],
    ["a second line for the same file cannot replace the first", `records dm0 ${SUM}\nrecords dm0 ${"f".repeat(64)}`, [["dm0", SUM]]],
  ];
  for (const [what, out, want] of table) {
    const r = parseInspect(`${out}\nnet mesh\n`, ["mesh"], ["dm0", "dm1"]);
    assert.deepEqual([...r.files], want, what);
    assert.deepEqual([...r.networks.keys()], ["mesh"], `${what}: the containers' part is read as before`);
  }
  assert.deepEqual([...parseInspect(`records dm0 ${SUM}\n`, ["mesh"]).files], [], "no interfaces asked: none read");
});

test("events: only the filtered events and the ready marker are understood", () => {
  const table: Array<[string, ReturnType<typeof parseEventLine>]> = [
    [`${READY_MARKER} 1796211503`, { kind: "ready" }],
    ["container start", { kind: "change", type: "container", action: "start" }],
    ["network disconnect", { kind: "change", type: "network", action: "disconnect" }],
    ["container rename", { kind: "change", type: "container", action: "rename" }],
    ["container exec_start: sh", undefined],
    ["network start", undefined],
    ["image pull", undefined],
    ["container start extra", undefined],
    [`${READY_MARKER} now`, undefined],
    ["container " + "x".repeat(200), undefined],
    ["", undefined],
  ];
  for (const [line, want] of table) assert.deepEqual(parseEventLine(line), want, JSON.stringify(line));
});
