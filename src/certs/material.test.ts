import { describe, expect, it } from 'vitest';
import { PortcullisError } from '../errors.js';
import { issueCa, issueServing } from './issue.js';
import { checkMaterial, wrongNamesError, type CertificateMaterial } from './material.js';

const now = new Date();
const ca = issueCa({ validityDays: 30, now, keyBits: 1024 });
const serving = issueServing({ ca, dnsNames: ['svc.ns.svc'], validityDays: 10, now, keyBits: 1024 });
const other = issueServing({ ca, dnsNames: ['other'], validityDays: 10, now, keyBits: 1024 });
const foreignCa = issueCa({ validityDays: 30, now, keyBits: 1024 });
const good: CertificateMaterial = { caBundle: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
const sources = { caBundle: 'secret ns/tls key ca.crt', caKey: 'secret ns/tls key ca.key', cert: 'secret ns/tls key tls.crt', key: 'secret ns/tls key tls.key' };
const required = { dnsNames: ['svc.ns.svc'], ipAddresses: [] };

function corrupt(pem: string): string {
  // Flip characters in the middle of the base64 body.
  const middle = Math.floor(pem.length / 2);
  return `${pem.slice(0, middle)}!!!!${pem.slice(middle + 4)}`;
}

describe('checkMaterial on bad input', () => {
  it('accepts consistent material and finds who signed what', () => {
    const checked = checkMaterial(good, sources, required);
    expect(checked.missing).toEqual([]);
    expect(checked.signer?.fingerprint256).toBe(checked.servingIssuer.fingerprint256);
  });

  it.each([
    ['a certificate that is not PEM', { cert: 'hello' }, 'secret ns/tls key tls.crt: expected a PEM certificate ("-----BEGIN CERTIFICATE-----"), found none'],
    ['a corrupt certificate', { cert: corrupt(serving.cert) }, 'secret ns/tls key tls.crt: the certificate is corrupt'],
    ['a corrupt CA bundle', { caBundle: corrupt(ca.cert) }, 'secret ns/tls key ca.crt: the certificate is corrupt'],
    ['a key that is not PEM', { key: 'nope' }, 'secret ns/tls key tls.key: expected a PEM private key'],
    ['a key that does not match the certificate', { key: other.key }, 'secret ns/tls key tls.key: the private key does not match the certificate in secret ns/tls key tls.crt (subject CN=svc.ns.svc)'],
    ['a certificate from another CA', { caBundle: foreignCa.cert, caKey: foreignCa.key }, 'secret ns/tls key tls.crt: the certificate (issuer CN=Portcullis CA'],
    ['a CA key that belongs to no CA of the bundle', { caKey: foreignCa.key }, 'secret ns/tls key ca.key: the private key does not match any CA certificate in secret ns/tls key ca.crt'],
    ['a serving certificate in the CA bundle', { caBundle: `${ca.cert}${serving.cert}` }, 'secret ns/tls key ca.crt: expected CA certificates only, found a non-CA certificate (subject CN=svc.ns.svc)'],
  ])('names the piece and the problem for %s', (_name, change, message) => {
    let thrown: unknown;
    try {
      checkMaterial({ ...good, ...change }, sources, required);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PortcullisError);
    expect((thrown as PortcullisError).code).toBe('CERT_INVALID');
    expect((thrown as PortcullisError).message).toContain(message);
  });

  it('reports a certificate for the wrong names with what it has and what it lacks', () => {
    const checked = checkMaterial({ ...good, cert: other.cert, key: other.key }, sources, { dnsNames: ['svc.ns.svc'], ipAddresses: ['127.0.0.1'] });
    expect(checked.missing).toEqual(['svc.ns.svc', '127.0.0.1']);
    expect(wrongNamesError(checked, sources).message).toBe('secret ns/tls key tls.crt: the certificate is for other; missing required svc.ns.svc, 127.0.0.1');
  });
});
