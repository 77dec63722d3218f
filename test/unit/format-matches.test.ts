// matches(format, value) answers as format.test(value) does, remembering only strings that matched
// (api/formats.ts): the same keys, subnets and endpoints are checked on every look at a host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ENDPOINT, IPV4_CIDR, WIREGUARD_KEY, matches } from "../../api/formats.js";

const key = Buffer.alloc(32, 7).toString("base64");
const rows: Array<{ format: RegExp; value: string; want: boolean }> = [
  { format: WIREGUARD_KEY, value: key, want: true },
  { format: WIREGUARD_KEY, value: `${key}\nPostUp = id`, want: false },
  { format: WIREGUARD_KEY, value: key.slice(0, 42) + "B=", want: false },
  { format: IPV4_CIDR, value: "10.0.1.0/24", want: true },
  { format: IPV4_CIDR, value: "10.0.1.0/33", want: false },
  { format: ENDPOINT, value: "198.51.100.7:51820", want: true },
  { format: ENDPOINT, value: "198.51.100.7:51820;reboot", want: false },
];

for (const r of rows) {
  test(`${r.format.source.slice(0, 24)}… ${JSON.stringify(r.value.slice(0, 30))} → ${r.want}, asked twice`, () => {
    assert.equal(matches(r.format, r.value), r.want);
    assert.equal(matches(r.format, r.value), r.want, "the second answer is the first");
    assert.equal(r.format.test(r.value), r.want, "and the regex's own");
  });
}

test("a regex with the g flag is asked every time (it keeps state), not remembered", () => {
  const g = /^a+$/g;
  assert.equal(matches(g, "aaa"), true);
  // A remembered answer would be true; the regex's own, with lastIndex moved on to 3, is false.
  assert.equal(matches(g, "aaa"), false);
});

test("20,000 remembered strings at most per format: then it starts over and still answers right", () => {
  const f = /^n[0-9]+$/;
  for (let i = 0; i < 20_500; i++) assert.equal(matches(f, `n${i}`), true);
  assert.equal(matches(f, "n1"), true);
  assert.equal(matches(f, "x1"), false);
});
