import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A PEM-encoded certificate with its private key. */
export interface KeyPair {
  cert: string;
  key: string;
}

export interface IssueCaOptions {
  commonName?: string;
  validityDays: number;
  /** The instant the validity starts; injected so that tests control time. */
  now: Date;
  keyBits?: number;
}

export interface IssueServingOptions {
  ca: KeyPair;
  /** DNS subject alternative names; the first is also the subject common name. */
  dnsNames: string[];
  ipAddresses?: string[];
  validityDays: number;
  now: Date;
  keyBits?: number;
}

export const DAY_MS = 86_400_000;
// Issued certificates are back-dated a little so that a peer whose clock is slightly behind
// does not reject a certificate that was just created.
export const BACKDATE_MS = 5 * 60_000;

function newKeys(bits: number): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  // Node's native generator is orders of magnitude faster than forge's pure-JS one.
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

/** node-forge writes PEM with CRLF line ends; files and caBundles read better with LF. */
function lf(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}

function serialNumber(): string {
  // A positive 128-bit serial (leading bit cleared so DER does not read it as negative).
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

/** Issues a self-signed CA certificate allowed to sign certificates (keyCertSign, cRLSign). */
export function issueCa(options: IssueCaOptions): KeyPair {
  const keys = newKeys(options.keyBits ?? 2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, options.now, options.validityDays);
  const subject = [
    { name: 'commonName', value: options.commonName ?? 'Portcullis CA' },
    { name: 'organizationName', value: 'Portcullis' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: lf(forge.pki.certificateToPem(cert)), key: lf(forge.pki.privateKeyToPem(keys.privateKey)) };
}

/** Issues a serving certificate signed by `ca` for the given DNS names and IP addresses. */
export function issueServing(options: IssueServingOptions): KeyPair {
  if (options.dnsNames.length === 0 && (options.ipAddresses ?? []).length === 0) {
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  }
  const caCert = forge.pki.certificateFromPem(options.ca.cert);
  const caKey = forge.pki.privateKeyFromPem(options.ca.key);
  const keys = newKeys(options.keyBits ?? 2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, options.now, options.validityDays);
  cert.setSubject([{ name: 'commonName', value: options.dnsNames[0] ?? options.ipAddresses?.[0] ?? 'portcullis' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...options.dnsNames.map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: lf(forge.pki.certificateToPem(cert)), key: lf(forge.pki.privateKeyToPem(keys.privateKey)) };
}

/** The DNS names a webhook Service is reached by: SVC, SVC.NS, SVC.NS.svc, SVC.NS.svc.cluster.local. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}
