// SSH keys of a lab: one ed25519 client key (OpenSSH format, what ssh2 and the Secret take)
// authorized on every host, and an ed25519 host key per host.
//
// Encoded here from node:crypto rather than with ssh2's utils.generateKeyPairSync, which
// drops a leading zero byte of the public key and so writes a malformed key ~1 time in 200
// ("Cannot parse privateKey: Malformed OpenSSH private key").
import { generateKeyPairSync, randomBytes } from "node:crypto";

export interface KeyPair {
  /** OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"), unencrypted. */
  privateKey: string;
  /** authorized_keys / known_hosts form: "ssh-ed25519 AAAA... comment". */
  publicKey: string;
}

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function generateEd25519(comment: string): KeyPair {
  // DER, not JWK: on Node 20 a JWK export of ed25519 keys was seen to hang after ~1000 calls.
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" }); // 16-byte header + 32-byte seed
  const spki = publicKey.export({ format: "der", type: "spki" }); // 12-byte header + 32-byte key
  if (pkcs8.length !== 48 || spki.length !== 44) throw new Error("node:crypto returned an ed25519 key of unexpected size");
  const seed = pkcs8.subarray(16);
  const pub = spki.subarray(12);
  const pubBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([uint32(check), uint32(check), sshString("ssh-ed25519"), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), uint32(1), sshString(pubBlob), sshString(priv)]);
  const b64 = body
    .toString("base64")
    .replace(/(.{70})/g, "$1\n")
    .replace(/\n$/, "");
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${pubBlob.toString("base64")} ${comment}`,
  };
}

/** "ssh-ed25519 AAAA..." without the comment, as the Machine spec's hostKey pin takes it. */
export function keyWithoutComment(publicKey: string): string {
  return publicKey.split(/\s+/).slice(0, 2).join(" ");
}
