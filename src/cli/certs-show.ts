import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PortcullisError } from '../errors.js';
import { FILES } from '../certs/file-store.js';
import { findIssuer, isValidAt, parseCertificate, parseCertificates, parsePrivateKey, type CertificateInfo } from '../certs/inspect.js';
import { EXIT, stringOption, type Command } from './command.js';

function readFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw new PortcullisError('CERT_INVALID', `file ${path}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function daysLeft(cert: CertificateInfo, now: Date): string {
  const days = Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000);
  return days < 0 ? `expired ${-days} days ago` : `${days} days left`;
}

function describe(cert: CertificateInfo, now: Date, indent: string): string[] {
  const sans = [...cert.dnsNames.map((name) => `DNS:${name}`), ...cert.ipAddresses.map((ip) => `IP:${ip}`)];
  return [
    `${indent}subject:  ${cert.subject}`,
    ...(sans.length > 0 ? [`${indent}SANs:     ${sans.join(', ')}`] : []),
    `${indent}issuer:   ${cert.issuer === cert.subject ? `${cert.issuer} (self-signed)` : cert.issuer}`,
    `${indent}valid:    ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()} (${daysLeft(cert, now)})`,
    `${indent}sha256:   ${cert.fingerprint256}`,
  ];
}

function summary(cert: CertificateInfo) {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    dnsNames: cert.dnsNames,
    ipAddresses: cert.ipAddresses,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  };
}

export const certsShowCommand: Command = {
  name: 'certs show',
  summary: 'Print subject, SANs, issuer and expiry of the certificates in a directory',
  usage: `Usage: portcullis certs show --dir DIR [--json]

Prints every CA certificate in DIR/ca.crt (two during a CA rotation) and the serving certificate
DIR/tls.crt: subject, subject alternative names, issuer, validity and days left. Then checks that
tls.key matches tls.crt, that a CA in ca.crt signed tls.crt, that ca.key (when present) belongs to a
CA in ca.crt, and that the serving certificate is valid now.

Options:
  --dir DIR    Certificate directory (as written by \`portcullis certs init\` or \`portcullis up\`).
  --json       Print one JSON object instead of text.
  -h, --help   Show this help.

Exit codes:
  0  all checks pass
  1  a check fails (expired, mismatched key, not signed by the CA)
  2  bad usage, a missing or corrupt file (the message names it)

Example:
  portcullis certs show --dir ./certs
`,
  options: { dir: { type: 'string' }, json: { type: 'boolean' } },
  positionals: false,
  async run({ values, io }) {
    const dir = resolve(io.cwd, stringOption(values, 'dir', true));
    const now = new Date();
    const paths = { caBundle: join(dir, FILES.caBundle), caKey: join(dir, FILES.caKey), cert: join(dir, FILES.cert), key: join(dir, FILES.key) };
    const caText = readFile(paths.caBundle);
    const certText = readFile(paths.cert);
    if (caText === undefined || certText === undefined) {
      throw new PortcullisError('CERT_INVALID', `directory ${dir}: ${[caText === undefined ? FILES.caBundle : '', certText === undefined ? FILES.cert : ''].filter(Boolean).join(', ')} missing`);
    }
    const bundle = parseCertificates(caText, `file ${paths.caBundle}`);
    const serving = parseCertificate(certText, `file ${paths.cert}`);
    const keyText = readFile(paths.key);
    const caKeyText = readFile(paths.caKey);
    const issuer = findIssuer(serving, bundle);
    const checks: { name: string; ok: boolean; detail?: string }[] = [
      {
        name: `${FILES.key} matches ${FILES.cert}`,
        ok: keyText !== undefined && serving.x509.checkPrivateKey(parsePrivateKey(keyText, `file ${paths.key}`)),
        ...(keyText === undefined ? { detail: `${FILES.key} missing` } : {}),
      },
      { name: `${FILES.cert} signed by a CA in ${FILES.caBundle}`, ok: issuer !== undefined, ...(issuer ? {} : { detail: `issuer ${serving.issuer} not in the bundle` }) },
      { name: `${FILES.cert} valid now`, ok: isValidAt(serving, now) },
    ];
    if (caKeyText !== undefined) {
      const caKey = parsePrivateKey(caKeyText, `file ${paths.caKey}`);
      const signer = bundle.find((ca) => ca.x509.checkPrivateKey(caKey));
      checks.push({ name: `${FILES.caKey} matches a CA in ${FILES.caBundle}`, ok: signer !== undefined, ...(signer ? { detail: `signs as ${signer.subject}` } : {}) });
    }
    const ok = checks.every((check) => check.ok);
    if (values.json === true) {
      io.stdout(`${JSON.stringify({ dir, ca: bundle.map(summary), serving: summary(serving), checks, ok }, null, 2)}\n`);
      return ok ? EXIT.ok : EXIT.negative;
    }
    const lines = [`${paths.caBundle} (${bundle.length} CA certificate${bundle.length === 1 ? '' : 's'})`];
    bundle.forEach((ca, index) => {
      if (bundle.length > 1) lines.push(`  [${index + 1}]`);
      lines.push(...describe(ca, now, '  '));
    });
    lines.push(paths.cert, ...describe(serving, now, '  '), 'checks');
    for (const check of checks) lines.push(`  ${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.detail ? ` (${check.detail})` : ''}`);
    io.stdout(`${lines.join('\n')}\n`);
    return ok ? EXIT.ok : EXIT.negative;
  },
};
