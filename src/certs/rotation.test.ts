import { describe, expect, it } from 'vitest';
import { DAY_MS } from './issue.js';
import { checkMaterial, type CertificateMaterial, type RequiredNames } from './material.js';
import { applyStep, planRotation, type RotationPolicy, type RotationStep } from './rotation.js';

const HOUR_MS = 3_600_000;
const names: RequiredNames = { dnsNames: ['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local'], ipAddresses: ['127.0.0.1'] };
const policy: RotationPolicy = { renewBeforeFraction: 1 / 3, overlapMs: 24 * HOUR_MS, required: names };
const settings = { caValidityDays: 3650, servingValidityDays: 365, names, keyBits: 1024 };
const sources = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' };
const t0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number, hours = 0) => new Date(t0.getTime() + days * DAY_MS + hours * HOUR_MS);

function check(material: CertificateMaterial, required = names) {
  return checkMaterial(material, sources, required);
}

/** Applies planned steps at `now` until none is due; returns the kinds and the result. */
function run(material: CertificateMaterial, now: Date): { steps: RotationStep['kind'][]; material: CertificateMaterial } {
  const steps: RotationStep['kind'][] = [];
  for (let index = 0; index < 5; index += 1) {
    const step = planRotation(check(material), now, policy);
    if (step.kind === 'none') break;
    steps.push(step.kind);
    material = applyStep(step, check(material), now, settings);
  }
  return { steps, material };
}

const fresh = applyStep({ kind: 'issue', reason: 'test' }, undefined, t0, settings);

describe('planRotation with an injected clock', () => {
  it('issues everything when nothing is stored', () => {
    expect(planRotation(undefined, t0, policy)).toMatchObject({ kind: 'issue' });
  });

  it.each([
    ['leaves a fresh serving certificate alone', 0, 'none'],
    ['leaves it alone while more than a third of its life remains', 240, 'none'],
    ['renews it when less than a third of its life remains', 245, 'renew-serving'],
    ['renews it when it has expired', 400, 'renew-serving'],
  ])('%s (day %d)', (_name, day, expected) => {
    expect(planRotation(check(fresh), at(day), policy).kind).toBe(expected);
  });

  it('renews a serving certificate that lacks a required name', () => {
    const step = planRotation(check(fresh, { ...names, dnsNames: [...names.dnsNames, 'new.example'] }), t0, { ...policy, required: { ...names, dnsNames: [...names.dnsNames, 'new.example'] } });
    expect(step).toEqual({ kind: 'renew-serving', reason: 'the serving certificate lacks new.example' });
  });

  it('issues a new CA (not just a certificate) when the CA key is missing', () => {
    const { caKey: _dropped, ...withoutKey } = fresh;
    expect(planRotation(check(withoutKey), t0, policy)).toMatchObject({ kind: 'issue', reason: 'the CA private key is missing, so nothing can be signed' });
  });

  it('rotates the CA in three steps with an overlap, never serving a certificate whose CA is not yet published', () => {
    // Keep the serving certificate young so that only the CA is due.
    let material = fresh;
    for (const day of [300, 600, 900, 1200, 1500, 1800, 2100]) material = run(material, at(day)).material;
    const caDue = at(2440); // 3650 * 2/3 = 2433 days
    const before = check(material);
    expect(before.bundle).toHaveLength(1);

    const first = run(material, caDue);
    expect(first.steps).toEqual(['add-ca']);
    const added = check(first.material);
    expect(added.bundle).toHaveLength(2);
    expect(added.serving.fingerprint256).toBe(before.serving.fingerprint256);
    expect(added.servingIssuer.fingerprint256).toBe(before.servingIssuer.fingerprint256);
    expect(added.signer?.fingerprint256).not.toBe(before.servingIssuer.fingerprint256);

    expect(run(first.material, new Date(caDue.getTime() + 23 * HOUR_MS)).steps).toEqual([]);
    const second = run(first.material, new Date(caDue.getTime() + 25 * HOUR_MS));
    expect(second.steps).toEqual(['switch-serving']);
    const switched = check(second.material);
    expect(switched.bundle).toHaveLength(2);
    expect(switched.servingIssuer.fingerprint256).toBe(added.signer?.fingerprint256);

    expect(run(second.material, new Date(caDue.getTime() + 48 * HOUR_MS)).steps).toEqual([]);
    const third = run(second.material, new Date(caDue.getTime() + 50 * HOUR_MS));
    expect(third.steps).toEqual(['drop-old-ca']);
    const dropped = check(third.material);
    expect(dropped.bundle.map((ca) => ca.fingerprint256)).toEqual([added.signer?.fingerprint256]);
  });

  it('switches early when the old serving certificate expires during the overlap', () => {
    const added = applyStep({ kind: 'add-ca', reason: 'test' }, check(fresh), at(300), settings);
    expect(planRotation(check(added), at(300, 1), policy).kind).toBe('none');
    expect(planRotation(check(added), at(366), policy)).toMatchObject({ kind: 'switch-serving' });
  });

  it('never issues a serving certificate that outlives its CA', () => {
    const shortCa = applyStep({ kind: 'issue', reason: 'test' }, undefined, t0, { ...settings, caValidityDays: 100 });
    const renewed = check(applyStep({ kind: 'renew-serving', reason: 'test' }, check(shortCa), at(50), settings));
    expect(renewed.serving.notAfter.getTime()).toBeLessThanOrEqual(renewed.servingIssuer.notAfter.getTime());
  });
});
