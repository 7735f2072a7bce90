import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { issueCa, issueServing, serviceDnsNames } from './issue.js';

const dir = tempDir();
afterAll(() => dir.remove());

const now = new Date();
const ca = issueCa({ commonName: 'Test CA', validityDays: 3650, now });
const serving = issueServing({ ca, dnsNames: [...serviceDnsNames('portcullis-webhook', 'portcullis'), 'localhost'], ipAddresses: ['127.0.0.1', '::1'], validityDays: 365, now });
const otherCa = issueCa({ commonName: 'Other CA', validityDays: 30, now });
const files = { ca: join(dir.path, 'ca.crt'), cert: join(dir.path, 'tls.crt'), other: join(dir.path, 'other.crt') };
writeFileSync(files.ca, ca.cert);
writeFileSync(files.cert, serving.cert);
writeFileSync(files.other, otherCa.cert);

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function extension(file: string, name: string): string {
  return openssl('x509', '-in', file, '-noout', '-ext', name);
}

describe('issued certificates, as openssl reads them', () => {
  it.each([
    ['the CA is a CA allowed to sign certificates', files.ca, 'basicConstraints,keyUsage', ['CA:TRUE', 'Certificate Sign']],
    ['the serving certificate is not a CA', files.cert, 'basicConstraints', ['CA:FALSE']],
    ['the serving certificate may sign and encipher keys', files.cert, 'keyUsage', ['Digital Signature', 'Key Encipherment']],
    ['the serving certificate is for TLS servers', files.cert, 'extendedKeyUsage', ['TLS Web Server Authentication']],
    [
      'the serving certificate names the four service names, localhost and both loopback addresses',
      files.cert,
      'subjectAltName',
      [
        'DNS:portcullis-webhook,',
        'DNS:portcullis-webhook.portcullis,',
        'DNS:portcullis-webhook.portcullis.svc,',
        'DNS:portcullis-webhook.portcullis.svc.cluster.local,',
        'DNS:localhost',
        'IP Address:127.0.0.1',
        'IP Address:0:0:0:0:0:0:0:1',
      ],
    ],
  ])('%s', (_name, file, ext, expected) => {
    const text = extension(file, ext);
    for (const part of expected) expect(text).toContain(part);
  });

  it('chains to its CA and to no other', () => {
    expect(openssl('verify', '-CAfile', files.ca, files.cert).trim()).toBe(`${files.cert}: OK`);
    expect(() => openssl('verify', '-CAfile', files.other, files.cert)).toThrow(/unable to get local issuer certificate/);
  });

  it('verifies for the purpose sslserver and the host names', () => {
    expect(openssl('verify', '-CAfile', files.ca, '-purpose', 'sslserver', '-verify_hostname', 'portcullis-webhook.portcullis.svc', files.cert)).toContain('OK');
    expect(() => openssl('verify', '-CAfile', files.ca, '-verify_hostname', 'elsewhere.example', files.cert)).toThrow(/hostname mismatch/);
  });

  it('starts validity a little before `now` and ends `validityDays` later', () => {
    const dates = openssl('x509', '-in', files.cert, '-noout', '-startdate', '-enddate');
    const start = new Date(/notBefore=(.*)/.exec(dates)?.[1] ?? '');
    const end = new Date(/notAfter=(.*)/.exec(dates)?.[1] ?? '');
    expect(now.getTime() - start.getTime()).toBeGreaterThan(0);
    expect(now.getTime() - start.getTime()).toBeLessThanOrEqual(5 * 60_000 + 1000);
    expect(Math.round((end.getTime() - now.getTime()) / 86_400_000)).toBe(365);
  });

  it('refuses a serving certificate without any name', () => {
    expect(() => issueServing({ ca, dnsNames: [], validityDays: 1, now })).toThrow('at least one DNS name or IP address');
  });
});
