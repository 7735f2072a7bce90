import type { KeyObject } from 'node:crypto';
import { PortcullisError } from '../errors.js';
import { checkKeyMatches, findIssuer, missingNames, parseCertificate, parseCertificates, parsePrivateKey, type CertificateInfo } from './inspect.js';

/**
 * The four pieces Portcullis serves and publishes, as stored (files `ca.crt`, `ca.key`, `tls.crt`,
 * `tls.key`, or the same keys of a `kubernetes.io/tls` Secret).
 */
export interface CertificateMaterial {
  /** One or more CA certificates (PEM): what clients trust, the webhooks' caBundle. Two during a CA rotation. */
  caBundle: string;
  /** The private key of the CA that signs new serving certificates; absent for bring-your-own certificates. */
  caKey?: string;
  /** The serving certificate (PEM), possibly followed by its chain. */
  cert: string;
  /** The serving certificate's private key (PEM). */
  key: string;
}

/** Where each piece came from, for error messages: `file /data/certs/ca.crt`, `secret ns/name key ca.crt`. */
export interface MaterialSources {
  caBundle: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface CheckedMaterial {
  material: CertificateMaterial;
  bundle: CertificateInfo[];
  serving: CertificateInfo;
  /** The CA of the bundle that signed the serving certificate. */
  servingIssuer: CertificateInfo;
  /** The CA of the bundle whose key is `caKey`; undefined without a CA key. */
  signer?: CertificateInfo;
  /** Required names the serving certificate lacks (empty when it covers them all). */
  missing: string[];
}

export interface RequiredNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * Parses and cross-checks the material: every PEM parses, the serving key matches the serving
 * certificate, a CA of the bundle signed it, and the CA key (when present) belongs to a CA of the
 * bundle. Throws CERT_INVALID naming the source of the faulty piece. Expiry is not checked here
 * (an expired certificate is still reported and renewed); names are reported in `missing`.
 */
export function checkMaterial(material: CertificateMaterial, sources: MaterialSources, required: RequiredNames): CheckedMaterial {
  const bundle = parseCertificates(material.caBundle, sources.caBundle);
  const notCa = bundle.find((cert) => !cert.isCa);
  if (notCa) throw new PortcullisError('CERT_INVALID', `${sources.caBundle}: expected CA certificates only, found a non-CA certificate (subject ${notCa.subject})`);
  const serving = parseCertificate(material.cert, sources.cert);
  const key = parsePrivateKey(material.key, sources.key);
  checkKeyMatches(serving, key, { cert: sources.cert, key: sources.key });
  const servingIssuer = findIssuer(serving, bundle);
  if (!servingIssuer) {
    throw new PortcullisError(
      'CERT_INVALID',
      `${sources.cert}: the certificate (issuer ${serving.issuer}) is not signed by any CA in ${sources.caBundle} (${bundle.map((ca) => ca.subject).join('; ')})`,
    );
  }
  let signer: CertificateInfo | undefined;
  if (material.caKey !== undefined) {
    const caKey: KeyObject = parsePrivateKey(material.caKey, sources.caKey);
    signer = bundle.find((ca) => ca.x509.checkPrivateKey(caKey));
    if (!signer) throw new PortcullisError('CERT_INVALID', `${sources.caKey}: the private key does not match any CA certificate in ${sources.caBundle}`);
  }
  return { material, bundle, serving, servingIssuer, ...(signer ? { signer } : {}), missing: missingNames(serving, required) };
}

/** The precise complaint about a serving certificate that lacks required names. */
export function wrongNamesError(checked: CheckedMaterial, sources: MaterialSources): PortcullisError {
  const has = [...checked.serving.dnsNames, ...checked.serving.ipAddresses].join(', ') || 'no names';
  return new PortcullisError('CERT_INVALID', `${sources.cert}: the certificate is for ${has}; missing required ${checked.missing.join(', ')}`);
}
