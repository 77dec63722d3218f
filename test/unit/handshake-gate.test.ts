// At most MAX_BASTION_HANDSHAKES handshakes run at once to one bastion (sshd's MaxStartups drops
// the ones beyond 10 at random); other bastions are not held back, and a failed handshake frees
// its slot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gatedHandshake, gatesInUse, MAX_BASTION_HANDSHAKES } from "../../hosts/handshake-gate.js";

test("32 handshakes to one bastion run at most 8 at once, and all finish", async () => {
  let running = 0;
  let peak = 0;
  const handshake = async (i: number) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 2));
    running--;
    if (i % 5 === 0) throw new Error(`handshake ${i} failed`);
    return i;
  };
  const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => gatedHandshake("bastion.example:22", () => handshake(i))));
  assert.equal(MAX_BASTION_HANDSHAKES, 8);
  assert.equal(peak, MAX_BASTION_HANDSHAKES, "never more than 8 at once");
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 25, "every handshake ran; failures freed their slots");
  assert.equal(gatesInUse(), 0, "an idle gate is dropped");
});

test("handshakes to different bastions do not wait for each other", async () => {
  let running = 0;
  let peak = 0;
  const handshake = async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 2));
    running--;
  };
  await Promise.all(Array.from({ length: 16 }, (_, i) => gatedHandshake(`b${i % 2}:22`, handshake)));
  assert.equal(peak, 2 * MAX_BASTION_HANDSHAKES);
});
