import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import nacl from "tweetnacl";
import { generateKeyPair, isWireGuardKey, publicKeyOf } from "../../mesh/keys.js";
import { ensureSystemPackages, REQUIREMENTS } from "../../lab/requirements.js";

const needWg = () => ensureSystemPackages({ requirements: REQUIREMENTS.filter((r) => r.binary === "wg") });

test("keys: public keys equal what `wg pubkey` prints, for 200 random private keys", async () => {
  await needWg();
  const pairs = Array.from({ length: 200 }, () => generateKeyPair());
  // One wg process per key is slow; a shell loop over stdin lines keeps it to one.
  const out = execFileSync("sh", ["-c", 'while read -r k; do printf "%s\\n" "$k" | wg pubkey; done'], {
    input: pairs.map((p) => p.privateKey).join("\n") + "\n",
    encoding: "utf8",
  });
  assert.deepEqual(
    out.trim().split("\n"),
    pairs.map((p) => p.publicKey),
  );
});

test("keys: unclamped private keys (from other tools) give wg's public key too", async () => {
  await needWg();
  for (let i = 0; i < 20; i++) {
    const raw = Buffer.from(nacl.randomBytes(32));
    raw[0]! |= 7; // set the bits clamping clears
    raw[31]! |= 128;
    const priv = raw.toString("base64");
    assert.equal(publicKeyOf(priv), execFileSync("wg", ["pubkey"], { input: priv + "\n", encoding: "utf8" }).trim());
  }
});

test("keys: generated private keys are clamped and look like wg genkey output", () => {
  for (let i = 0; i < 100; i++) {
    const { privateKey, publicKey } = generateKeyPair();
    assert.ok(isWireGuardKey(privateKey) && isWireGuardKey(publicKey));
    const b = Buffer.from(privateKey, "base64");
    assert.equal(b[0]! & 7, 0);
    assert.equal(b[31]! & 128, 0);
    assert.equal(b[31]! & 64, 64);
    assert.equal(publicKeyOf(privateKey), publicKey);
  }
});

test("keys: malformed keys are refused without echoing them", () => {
  for (const bad of ["", "abc", "A".repeat(44), "not a key at all, with spaces="]) {
    assert.throws(
      () => publicKeyOf(bad),
      (e: Error) => !e.message.includes(bad) || bad === "",
    );
  }
});
