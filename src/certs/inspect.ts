import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { PortcullisError } from '../errors.js';

/**
 * Reading and checking PEM material. Every check takes the instant as a parameter and every error
 * names where the material came from (`file /data/certs/tls.key`, `secret portcullis/x key ca.crt`).
 */

export interface CertificateInfo {
  subject: string;
  issuer: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  fingerprint256: string;
  isCa: boolean;
  x509: X509Certificate;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function invalid(where: string, what: string): PortcullisError {
  return new PortcullisError('CERT_INVALID', `${where}: ${what}`, { detail: { where } });
}

/** Canonical text of an IP address: IPv6 compressed and lower-case (`0:0:0:0:0:0:0:1` → `::1`). */
export function normalizeIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1).toLowerCase();
  } catch {
    // Not an IPv6 literal after all; compare it as written.
    return ip.toLowerCase();
  }
}

function parseSan(san: string | undefined): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const entry of (san ?? '').split(',').map((part) => part.trim())) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ipAddresses.push(normalizeIp(entry.slice(11)));
  }
  return { dnsNames, ipAddresses };
}

function info(x509: X509Certificate): CertificateInfo {
  return {
    subject: x509.subject.replace(/\n/g, ', '),
    issuer: x509.issuer.replace(/\n/g, ', '),
    ...parseSan(x509.subjectAltName),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serialNumber: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    isCa: x509.ca,
    x509,
  };
}

/** Parses every certificate of a PEM bundle; throws CERT_INVALID naming `where` when there is none or one is corrupt. */
export function parseCertificates(pem: string, where: string): CertificateInfo[] {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw invalid(where, 'expected a PEM certificate ("-----BEGIN CERTIFICATE-----"), found none');
  return blocks.map((block, index) => {
    try {
      return info(new X509Certificate(block));
    } catch (error) {
      const which = blocks.length > 1 ? `certificate ${index + 1} of ${blocks.length}` : 'the certificate';
      throw invalid(where, `${which} is corrupt: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
}

/** Parses exactly one certificate (a serving certificate may be followed by its chain; the first is the leaf). */
export function parseCertificate(pem: string, where: string): CertificateInfo {
  const [first] = parseCertificates(pem, where);
  if (!first) throw invalid(where, 'expected a PEM certificate, found none');
  return first;
}

export function parsePrivateKey(pem: string, where: string): KeyObject {
  if (!/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(pem)) throw invalid(where, 'expected a PEM private key ("-----BEGIN … PRIVATE KEY-----"), found none');
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw invalid(where, `the private key is corrupt: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Throws CERT_INVALID when `key` is not the private key of `cert`. */
export function checkKeyMatches(cert: CertificateInfo, key: KeyObject, where: { cert: string; key: string }): void {
  if (!cert.x509.checkPrivateKey(key)) {
    throw invalid(where.key, `the private key does not match the certificate in ${where.cert} (subject ${cert.subject})`);
  }
}

/** The CA of `bundle` that signed `cert`, or undefined. */
export function findIssuer(cert: CertificateInfo, bundle: CertificateInfo[]): CertificateInfo | undefined {
  return bundle.find((ca) => cert.x509.checkIssued(ca.x509) && cert.x509.verify(ca.x509.publicKey));
}

/** The names `cert` lacks among those required (IP addresses compared case-insensitively). */
export function missingNames(cert: CertificateInfo, required: { dnsNames: string[]; ipAddresses: string[] }): string[] {
  const dns = new Set(cert.dnsNames.map((name) => name.toLowerCase()));
  const ips = new Set(cert.ipAddresses);
  return [
    ...required.dnsNames.filter((name) => !dns.has(name.toLowerCase())),
    ...required.ipAddresses.filter((ip) => !ips.has(normalizeIp(ip))),
  ];
}

/** Whether `cert` is valid at `now` (notBefore ≤ now ≤ notAfter). */
export function isValidAt(cert: CertificateInfo, now: Date): boolean {
  return cert.notBefore.getTime() <= now.getTime() && now.getTime() <= cert.notAfter.getTime();
}

/** The share of the certificate's lifetime still ahead at `now` (0 when expired, 1 when not yet valid). */
export function remainingFraction(cert: CertificateInfo, now: Date): number {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  if (lifetime <= 0) return 0;
  return Math.min(1, Math.max(0, (cert.notAfter.getTime() - now.getTime()) / lifetime));
}

/** Splits a PEM bundle into its certificate blocks (text), dropping anything else. */
export function pemBlocks(pem: string): string[] {
  return pem.match(PEM_BLOCK) ?? [];
}
