// WireGuard keys: Curve25519 (X25519) via tweetnacl, with WireGuard's clamping, base64 like `wg genkey`.
import nacl from "tweetnacl";
import { WIREGUARD_KEY } from "../api/formats.js";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** True for a base64 32-byte key as wg(8) prints it. */
export function isWireGuardKey(text: string): boolean {
  return WIREGUARD_KEY.test(text);
}

/** Clamps a Curve25519 scalar in place, exactly as `wg genkey` does. */
function clamp(k: Uint8Array): Uint8Array {
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

export function generateKeyPair(random: (n: number) => Uint8Array = (n) => nacl.randomBytes(n)): KeyPair {
  const secret = clamp(random(32));
  return { privateKey: Buffer.from(secret).toString("base64"), publicKey: Buffer.from(nacl.scalarMult.base(secret)).toString("base64") };
}

/** The public key for a private key, like `wg pubkey` (which clamps before multiplying). */
export function publicKeyOf(privateKey: string): string {
  if (!isWireGuardKey(privateKey)) throw new Error("not a WireGuard private key (32 bytes, base64)");
  const secret = clamp(new Uint8Array(Buffer.from(privateKey, "base64")));
  return Buffer.from(nacl.scalarMult.base(secret)).toString("base64");
}
