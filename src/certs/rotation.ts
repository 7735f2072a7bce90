import { BACKDATE_MS, DAY_MS, issueCa, issueServing } from './issue.js';
import { isValidAt, pemBlocks, remainingFraction, type CertificateInfo } from './inspect.js';
import type { CertificateMaterial, CheckedMaterial, RequiredNames } from './material.js';

/**
 * Renewal decisions, as pure functions of the stored material and the instant.
 *
 * CA rotation keeps every client working (no step removes trust that a served certificate needs):
 *   1. `add-ca`: the signing CA has less than `renewBeforeFraction` of its life left → a new CA is
 *      issued and the bundle becomes old + new (published to the webhooks' caBundle); the served
 *      certificate is still the one signed by the old CA.
 *   2. `switch-serving`: once the new CA has been published for `overlapMs`, a serving certificate
 *      signed by it replaces the old one.
 *   3. `drop-old-ca`: once that certificate has been served for `overlapMs`, the old CA leaves the bundle.
 * The serving certificate alone is renewed (`renew-serving`) when less than `renewBeforeFraction`
 * of its lifetime remains, when it lacks a required name, or when it is not valid now.
 */
export type RotationStep =
  | { kind: 'none' }
  | { kind: 'issue'; reason: string }
  | { kind: 'add-ca'; reason: string }
  | { kind: 'switch-serving'; reason: string }
  | { kind: 'drop-old-ca'; reason: string }
  | { kind: 'renew-serving'; reason: string };

export interface RotationPolicy {
  renewBeforeFraction: number;
  /** How long a newly published CA (or a newly served certificate) is given before the next step. */
  overlapMs: number;
  required: RequiredNames;
}

function iso(date: Date): string {
  return date.toISOString();
}

/** Decides the next step for `checked` (undefined: nothing stored yet) at `now`. */
export function planRotation(checked: CheckedMaterial | undefined, now: Date, policy: RotationPolicy): RotationStep {
  if (!checked) return { kind: 'issue', reason: 'no certificates stored yet' };
  const { signer, serving, servingIssuer, bundle } = checked;
  if (!signer) return { kind: 'issue', reason: 'the CA private key is missing, so nothing can be signed' };
  if (!isValidAt(signer, now)) return { kind: 'issue', reason: `the signing CA is not valid at ${iso(now)} (valid ${iso(signer.notBefore)} to ${iso(signer.notAfter)})` };

  const newestCa = bundle.reduce((newest, ca) => (ca.notBefore > newest.notBefore ? ca : newest));
  if (remainingFraction(signer, now) < policy.renewBeforeFraction && newestCa === signer && servingIssuer === signer) {
    return { kind: 'add-ca', reason: `the CA expires at ${iso(signer.notAfter)}, less than ${policy.renewBeforeFraction.toFixed(2)} of its lifetime remains` };
  }
  const servingValid = isValidAt(serving, now);
  if (servingIssuer !== signer) {
    const publishedAt = signer.notBefore.getTime() + BACKDATE_MS;
    if (now.getTime() >= publishedAt + policy.overlapMs) return { kind: 'switch-serving', reason: `the new CA has been published since ${iso(new Date(publishedAt))}` };
    if (!servingValid) return { kind: 'switch-serving', reason: `the serving certificate is not valid at ${iso(now)}; switching before the overlap ends` };
    return { kind: 'none' };
  }
  const expiredCas = bundle.filter((ca) => ca !== signer && ca.notAfter.getTime() < now.getTime());
  const servedSince = serving.notBefore.getTime() + BACKDATE_MS;
  if (bundle.length > 1 && (expiredCas.length > 0 || now.getTime() >= servedSince + policy.overlapMs)) {
    return { kind: 'drop-old-ca', reason: `the serving certificate signed by the new CA has been in use since ${iso(new Date(servedSince))}` };
  }
  if (checked.missing.length > 0) return { kind: 'renew-serving', reason: `the serving certificate lacks ${checked.missing.join(', ')}` };
  if (!servingValid) return { kind: 'renew-serving', reason: `the serving certificate is not valid at ${iso(now)} (valid ${iso(serving.notBefore)} to ${iso(serving.notAfter)})` };
  if (remainingFraction(serving, now) < policy.renewBeforeFraction) {
    return { kind: 'renew-serving', reason: `the serving certificate expires at ${iso(serving.notAfter)}, less than ${policy.renewBeforeFraction.toFixed(2)} of its lifetime remains` };
  }
  return { kind: 'none' };
}

/** When the next step is due if nothing changes (for logs and for `certs show`). */
export function nextRenewal(checked: CheckedMaterial, policy: RotationPolicy): Date {
  const at = (cert: CertificateInfo) => new Date(cert.notAfter.getTime() - policy.renewBeforeFraction * (cert.notAfter.getTime() - cert.notBefore.getTime()));
  const serving = at(checked.serving);
  const ca = checked.signer ? at(checked.signer) : serving;
  return serving < ca ? serving : ca;
}

export interface IssueSettings {
  caValidityDays: number;
  servingValidityDays: number;
  names: RequiredNames;
  keyBits?: number;
}

function caName(now: Date): string {
  // A distinct subject per CA keeps old and new apart in every trust store during an overlap.
  return `Portcullis CA ${now.toISOString().replace(/\.\d+Z$/, 'Z')}`;
}

function issueServingFor(signerPem: string, caKey: string, signer: CertificateInfo | undefined, now: Date, settings: IssueSettings): { cert: string; key: string } {
  // A serving certificate never outlives the CA that signs it.
  const caDaysLeft = signer ? Math.floor((signer.notAfter.getTime() - now.getTime()) / DAY_MS) : settings.servingValidityDays;
  const validityDays = Math.max(1, Math.min(settings.servingValidityDays, caDaysLeft));
  return issueServing({ ca: { cert: signerPem, key: caKey }, ...settings.names, validityDays, now, ...(settings.keyBits ? { keyBits: settings.keyBits } : {}) });
}

/** Produces the material after `step`. `checked` is required for every step but `issue`. */
export function applyStep(step: Exclude<RotationStep, { kind: 'none' }>, checked: CheckedMaterial | undefined, now: Date, settings: IssueSettings): CertificateMaterial {
  const keyBits = settings.keyBits ? { keyBits: settings.keyBits } : {};
  if (step.kind === 'issue' || !checked || !checked.signer || checked.material.caKey === undefined) {
    const ca = issueCa({ commonName: caName(now), validityDays: settings.caValidityDays, now, ...keyBits });
    const serving = issueServing({ ca, ...settings.names, validityDays: Math.min(settings.servingValidityDays, settings.caValidityDays), now, ...keyBits });
    return { caBundle: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
  }
  const { material, bundle, signer } = checked;
  const blocks = pemBlocks(material.caBundle);
  const signerPem = blocks[bundle.indexOf(signer)] ?? '';
  switch (step.kind) {
    case 'add-ca': {
      const ca = issueCa({ commonName: caName(now), validityDays: settings.caValidityDays, now, ...keyBits });
      return { ...material, caBundle: [...blocks, ca.cert.trim()].join('\n') + '\n', caKey: ca.key };
    }
    case 'switch-serving':
    case 'renew-serving': {
      const serving = issueServingFor(signerPem, material.caKey ?? '', signer, now, settings);
      return { ...material, cert: serving.cert, key: serving.key };
    }
    case 'drop-old-ca':
      return { ...material, caBundle: `${signerPem.trim()}\n` };
  }
}
