import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/main.js';
import { repoRoot, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const D = join(dir.path, 'D');

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs `portcullis ARGS` in this process through the real dispatcher (a child process per call
 * costs seconds on a loaded machine; the "must show" init below runs as a real child process).
 */
async function cli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: {}, cwd: repoRoot });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  const result = await runCli(['certs', 'init', '--dir', D, '--service', 'portcullis-webhook', '--namespace', 'portcullis', '--ip', '127.0.0.1']);
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toContain(`wrote ${D}/ca.crt`);
}, 90_000);
afterAll(() => dir.remove());

describe('portcullis certs init (the issue\'s "must show")', () => {
  it('writes a chain openssl verifies', () => {
    expect(openssl('verify', '-CAfile', join(D, 'ca.crt'), join(D, 'tls.crt')).trim()).toBe(`${join(D, 'tls.crt')}: OK`);
  });

  it('lists the four service names and 127.0.0.1 in subjectAltName', () => {
    const san = openssl('x509', '-in', join(D, 'tls.crt'), '-noout', '-ext', 'subjectAltName');
    expect(san).toContain(
      'DNS:portcullis-webhook, DNS:portcullis-webhook.portcullis, DNS:portcullis-webhook.portcullis.svc, DNS:portcullis-webhook.portcullis.svc.cluster.local, IP Address:127.0.0.1',
    );
  });

  it('writes the private keys with mode 0600', () => {
    expect(statSync(join(D, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(D, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(D, 'tls.crt')).mode & 0o777).toBe(0o644);
  });

  it('refuses to replace existing certificates without --force', async () => {
    const before = readFileSync(join(D, 'tls.crt'), 'utf8');
    const again = await cli(['certs', 'init', '--dir', D, '--service', 'portcullis-webhook', '--namespace', 'portcullis']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds certificates; nothing written');
    expect(readFileSync(join(D, 'tls.crt'), 'utf8')).toBe(before);
  });

  it.each([
    ['a service that is not a DNS label', ['--service', 'Web_Hook', '--namespace', 'ns'], '--service: expected a DNS label (lower-case letters, digits, "-"), got "Web_Hook"'],
    ['an IP that is not one', ['--service', 'svc', '--namespace', 'ns', '--ip', '300.1.1.1'], '--ip: expected an IPv4 or IPv6 address, got "300.1.1.1"'],
    ['a missing namespace', ['--service', 'svc'], '--namespace is required'],
  ])('rejects %s with exit code 2', async (_name, args, message) => {
    const result = await cli(['certs', 'init', '--dir', join(dir.path, 'bad'), ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});

describe('portcullis certs show and rotate', () => {
  it('shows subject, SANs, issuer and expiry, then renews the serving certificate for the same names', async () => {
    const shown = await cli(['certs', 'show', '--dir', D]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('subject:  CN=portcullis-webhook');
    expect(shown.stdout).toContain('SANs:     DNS:portcullis-webhook, DNS:portcullis-webhook.portcullis, DNS:portcullis-webhook.portcullis.svc, DNS:portcullis-webhook.portcullis.svc.cluster.local, IP:127.0.0.1');
    expect(shown.stdout).toMatch(/issuer: {3}CN=Portcullis CA .*\(self-signed\)/);
    expect(shown.stdout).toMatch(/\(364 days left\)/);
    expect(shown.stdout).toContain('ok   tls.key matches tls.crt');

    const before = readFileSync(join(D, 'tls.crt'), 'utf8');
    const rotated = await cli(['certs', 'rotate', '--dir', D]);
    expect(rotated.code).toBe(0);
    const after = readFileSync(join(D, 'tls.crt'), 'utf8');
    expect(after).not.toBe(before);
    expect(openssl('verify', '-CAfile', join(D, 'ca.crt'), join(D, 'tls.crt'))).toContain('OK');
    expect(openssl('x509', '-in', join(D, 'tls.crt'), '-noout', '-ext', 'subjectAltName')).toContain('IP Address:127.0.0.1');

    const json = await cli(['certs', 'show', '--dir', D, '--json']);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; serving: { ipAddresses: string[] }; ca: unknown[] };
    expect(parsed.ok).toBe(true);
    expect(parsed.serving.ipAddresses).toEqual(['127.0.0.1']);
  });

  it('starts a CA rotation with --ca: the bundle holds both CAs and the served certificate still verifies', async () => {
    const copy = join(dir.path, 'rotate-ca');
    expect((await cli(['certs', 'init', '--dir', copy, '--service', 's', '--namespace', 'n'])).code).toBe(0);
    const rotated = await cli(['certs', 'rotate', '--dir', copy, '--ca']);
    expect(rotated.code).toBe(0);
    expect(readFileSync(join(copy, 'ca.crt'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(openssl('verify', '-CAfile', join(copy, 'ca.crt'), join(copy, 'tls.crt'))).toContain('OK');
    // The next renewal is signed by the new CA: it verifies against the new CA alone.
    expect((await cli(['certs', 'rotate', '--dir', copy])).code).toBe(0);
    const newCa = readFileSync(join(copy, 'ca.crt'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[1] ?? '';
    writeFileSync(join(copy, 'new-ca.crt'), newCa);
    expect(openssl('verify', '-CAfile', join(copy, 'new-ca.crt'), join(copy, 'tls.crt'))).toContain('OK');
  });

  it.each([
    ['a corrupt tls.crt', 'tls.crt', 'garbage', 2, 'tls.crt: expected a PEM certificate'],
    ['a tls.key of another certificate', 'tls.key', 'other-key', 1, 'FAIL tls.key matches tls.crt'],
  ])('reports %s precisely', async (_name, file, content, code, message) => {
    const copy = join(dir.path, `bad-${file}`);
    cpSync(D, copy, { recursive: true });
    writeFileSync(join(copy, file), content === 'other-key' ? readFileSync(join(D, 'ca.key'), 'utf8') : content);
    const shown = await cli(['certs', 'show', '--dir', copy]);
    expect(shown.code).toBe(code);
    expect(`${shown.stdout}${shown.stderr}`).toContain(message);
  });
});

describe('portcullis webhooks render', () => {
  function documents(text: string): Record<string, unknown>[] {
    return parseAllDocuments(text).map((document) => document.toJS() as Record<string, unknown>);
  }
  type Webhook = { name: string; clientConfig: { caBundle?: string; url?: string; service?: { name: string; namespace: string; path: string; port: number } } };

  it('fills caBundle into every webhook and points the client config at a Service', async () => {
    const result = await cli(['webhooks', 'render', '--ca', join(D, 'ca.crt'), '--service', 'portcullis-webhook.portcullis']);
    expect(result.code).toBe(0);
    const docs = documents(result.stdout);
    expect(docs.map((doc) => doc.kind).sort()).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
    const ca = readFileSync(join(D, 'ca.crt'), 'utf8');
    for (const doc of docs) {
      expect(doc.apiVersion).toBe('admissionregistration.k8s.io/v1');
      for (const webhook of doc.webhooks as Webhook[]) {
        expect(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8')).toBe(ca);
        expect(webhook.clientConfig.service).toMatchObject({ name: 'portcullis-webhook', namespace: 'portcullis', port: 443 });
        expect(['/validate', '/mutate']).toContain(webhook.clientConfig.service?.path);
      }
    }
    // Comments of the source files are kept.
    expect(result.stdout).toContain('# Fail closed');
  });

  it('prints documents that validate against the admissionregistration.k8s.io/v1 OpenAPI schema, with no unknown field', async () => {
    const openapi = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/k8s-admission/apis__admissionregistration.k8s.io__v1_openapi.json'), 'utf8')) as {
      components: { schemas: Record<string, unknown> };
    };
    // Strict field validation, as `kubectl apply --validate=strict` does: no property the schema does not name.
    const strict = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(strict);
      else if (typeof node === 'object' && node !== null) {
        const record = node as Record<string, unknown>;
        if (record.properties && record.additionalProperties === undefined) record.additionalProperties = false;
        Object.values(record).forEach(strict);
      }
    };
    strict(openapi.components.schemas);
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
    ajv.addFormat('int32', { type: 'number', validate: (value: number) => Number.isInteger(value) });
    ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isInteger(value) });
    ajv.addFormat('date-time', true);
    ajv.addSchema(openapi, 'openapi');
    for (const args of [['--service', 'portcullis-webhook.portcullis'], ['--url', 'https://127.0.0.1:8443']]) {
      const result = await cli(['webhooks', 'render', '--ca', join(D, 'ca.crt'), ...args]);
      for (const doc of documents(result.stdout)) {
        const validate = ajv.getSchema(`openapi#/components/schemas/io.k8s.api.admissionregistration.v1.${String(doc.kind)}`);
        if (!validate) throw new Error(`no schema for ${String(doc.kind)}`);
        expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
      }
    }
  });

  it('points the client config at a URL outside the cluster', async () => {
    const result = await cli(['webhooks', 'render', '--ca', join(D, 'ca.crt'), '--url', 'https://127.0.0.1:8443']);
    expect(result.code).toBe(0);
    const urls = documents(result.stdout).flatMap((doc) => (doc.webhooks as Webhook[]).map((webhook) => webhook.clientConfig));
    expect(urls.map((config) => config.url).sort()).toEqual(['https://127.0.0.1:8443/mutate', 'https://127.0.0.1:8443/validate']);
    expect(urls.every((config) => config.service === undefined)).toBe(true);
  });

  it.each([
    ['an http URL', ['--url', 'http://127.0.0.1:8443'], 'kube-apiserver only calls webhooks over https, got "http:"'],
    ['both --service and --url', ['--service', 'a.b', '--url', 'https://x:1'], 'expected exactly one of --service SVC.NS or --url https://HOST:PORT'],
    ['a service without namespace', ['--service', 'portcullis-webhook'], '--service: expected SERVICE.NAMESPACE[:PORT] (DNS labels), got "portcullis-webhook"'],
    ['the serving certificate instead of the CA', ['--service', 'a.b', '--ca', 'TLS'], 'expected CA certificates, found a non-CA certificate (subject CN=portcullis-webhook); pass ca.crt, not tls.crt'],
  ])('rejects %s with exit code 2', async (_name, args, message) => {
    const ca = args.includes('TLS') ? join(D, 'tls.crt') : join(D, 'ca.crt');
    const result = await cli(['webhooks', 'render', ...args.filter((arg) => arg !== 'TLS' && arg !== '--ca'), '--ca', ca]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});
