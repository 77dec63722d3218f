// The store's own PKI: a CA and a serving certificate, generated at first start and kept in the
// state dir (pki/), plus the bearer token clients present. node-forge builds the certificates
// (Node 20 has no X.509 writer); the RSA keys come from Node's crypto, which forge uses when present.
import { randomBytes, generateKeyPairSync, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import forge from "node-forge";
import { writePrivateFile } from "./state-dir.js";

export interface TlsMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

const day = 24 * 3600 * 1000;

function newKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
  const priv = forge.pki.privateKeyFromPem(privateKey);
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  return { privateKey: priv, publicKey: pub, pem: privateKey };
}

function serial(): string {
  // Positive (high bit clear) 16-byte serial number.
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString("hex");
}

function createCa(): { certPem: string; keyPem: string } {
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3600 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 3650 * day);
  const subject = [{ name: "commonName", value: `dockmesh-store-ca-${Math.floor(Date.now() / 1000)}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem };
}

function createServing(caCertPem: string, caKeyPem: string, hosts: string[]): { certPem: string; keyPem: string } {
  const ca = forge.pki.certificateFromPem(caCertPem);
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3600 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 365 * day);
  cert.setSubject([{ name: "commonName", value: "dockmesh-store" }]);
  cert.setIssuer(ca.subject.attributes);
  const altNames = hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h }));
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem };
}

/** Does the certificate cover every host and stay valid for at least 30 more days? */
function servingCertFits(certPem: string, hosts: string[]): boolean {
  try {
    const c = new X509Certificate(certPem);
    if (Date.parse(c.validTo) - Date.now() < 30 * day) return false;
    return hosts.every((h) => (isIP(h) ? c.checkIP(h) !== undefined : c.checkHost(h) !== undefined));
  } catch {
    return false;
  }
}

/** Loads pki/ from the state dir, creating the CA and (re)issuing the serving cert as needed. */
export function ensureTls(stateDir: string, hosts: string[]): TlsMaterial {
  const dir = join(stateDir, "pki");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCrt = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  const crt = join(dir, "server.crt");
  const key = join(dir, "server.key");
  try {
    if (!existsSync(caCrt) || !existsSync(caKey)) {
      const ca = createCa();
      writePrivateFile(caKey, ca.keyPem);
      writePrivateFile(caCrt, ca.certPem);
    }
    const caCertPem = readFileSync(caCrt, "utf8");
    if (!existsSync(crt) || !existsSync(key) || !servingCertFits(readFileSync(crt, "utf8"), hosts)) {
      const s = createServing(caCertPem, readFileSync(caKey, "utf8"), hosts);
      writePrivateFile(key, s.keyPem);
      writePrivateFile(crt, s.certPem);
    }
    return { caCertPem, certPem: readFileSync(crt, "utf8"), keyPem: readFileSync(key, "utf8") };
  } catch (err) {
    throw new Error(`set up TLS certificates in ${dir}`, { cause: err });
  }
}

/** The bearer token in the state dir, created at first start. */
export function ensureToken(stateDir: string): string {
  const path = join(stateDir, "token");
  if (existsSync(path)) {
    const t = readFileSync(path, "utf8").trim();
    if (t) return t;
  }
  const t = randomBytes(32).toString("base64url");
  writePrivateFile(path, `${t}\n`);
  return t;
}

/**
 * TLS 1.3, and for TLS 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305),
 * as kube-apiserver offers: no static-RSA key exchange, no CBC-SHA1. kubectl, client-go and
 * @kubernetes/client-node all speak TLS 1.3.
 */
export const tlsServerOptions = {
  minVersion: "TLSv1.2",
  ciphers: [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  honorCipherOrder: true,
} as const;
