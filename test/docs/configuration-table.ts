/**
 * Renders the configuration reference table of docs/configuration.md from the config schema:
 * every leaf of `Config` (src/config/schema.ts) with its environment variable (`envBindings()`),
 * type, default (`defaultConfig('./.portcullis')`) and the doc comment written on the field.
 *
 *   npx tsx test/docs/configuration-table.ts --write    # rewrites the table in docs/configuration.md
 *
 * test/docs/configuration.test.ts fails when the doc and the schema disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { envBindings } from '../../src/config/load.js';
import { configSchema, defaultConfig } from '../../src/config/schema.js';

export const BEGIN = '<!-- BEGIN GENERATED: configuration table (npx tsx test/docs/configuration-table.ts --write) -->';
export const END = '<!-- END GENERATED: configuration table -->';
export const DOC_PATH = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));
const SCHEMA_PATH = fileURLToPath(new URL('../../src/config/schema.ts', import.meta.url));

/** The doc comment of every field of `interface Config`, keyed by dotted path. */
export function fieldComments(): Map<string, string> {
  const source = ts.createSourceFile(SCHEMA_PATH, readFileSync(SCHEMA_PATH, 'utf8'), ts.ScriptTarget.ES2022, true);
  const comments = new Map<string, string>();
  const walk = (members: ts.NodeArray<ts.TypeElement>, prefix: string[]) => {
    for (const member of members) {
      if (!ts.isPropertySignature(member) || !member.name) continue;
      const path = [...prefix, member.name.getText(source)];
      const text = ts
        .getJSDocCommentsAndTags(member)
        .map((doc) => (ts.isJSDoc(doc) ? (ts.getTextOfJSDocComment(doc.comment) ?? '') : ''))
        .join(' ')
        .replace(/\s+/g, ' ')
        .trim();
      if (text) comments.set(path.join('.'), text);
      if (member.type && ts.isTypeLiteralNode(member.type)) walk(member.type.members, path);
    }
  };
  source.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === 'Config') walk(node.members, []);
  });
  return comments;
}

/**
 * Meanings of the fields that carry no doc comment in schema.ts (a comment there wins). Kept
 * here so that the reference is complete; owners are welcome to move a line into schema.ts.
 */
const FALLBACK: Record<string, string> = {
  'log.level': 'Lowest level written (logs are JSON lines on stderr under `up`).',
  'kube.kubeconfig': 'A kubeconfig file to use instead of KUBECONFIG / the in-cluster config.',
  'webhook.tls.certFile': 'Serving certificate (PEM) of the HTTPS servers; issued here on first start in managed mode.',
  'webhook.tls.keyFile': 'Private key of the serving certificate.',
  'webhook.bodyLimitBytes': 'Largest AdmissionReview accepted (413 above it).',
  'webhook.verdicts.source': '`builtin`: the included registry and scanner; `harbor`: a Harbor v2.0 API; `none`: no verdicts (gates see `unavailable`).',
  'webhook.verdicts.cacheMax': 'Verdicts kept in the in-memory LRU cache.',
  'webhook.verdicts.cacheTtlSeconds': 'How long a cached verdict is reused.',
  'webhook.verdicts.harbor.url': 'Base URL of the Harbor API (`https://harbor.example.com`, without `/api/v2.0`).',
  'webhook.verdicts.harbor.username': 'Harbor user or robot account (basic auth).',
  'webhook.verdicts.harbor.password': 'Its password or robot secret.',
  'webhook.verdicts.harbor.caFile': 'PEM file of the CA that signed Harbor\'s certificate.',
  'webhook.verdicts.harbor.insecureSkipVerify': 'Skip TLS verification of Harbor (tests only).',
  'certs.dir': 'Directory of `ca.crt`, `ca.key`, `tls.crt`, `tls.key` outside a cluster (and in external mode).',
  'certs.service': 'Name of the webhook Service; the serving certificate covers SVC, SVC.NS, SVC.NS.svc and SVC.NS.svc.cluster.local.',
  'certs.namespace': 'Namespace of that Service (the suite\'s namespace).',
  'certs.dnsNames': 'More DNS names for the serving certificate (the registry and scanner Services in a cluster).',
  'certs.ipAddresses': 'More IP addresses for the serving certificate.',
  'certs.caValidityDays': 'Lifetime of an issued CA.',
  'certs.servingValidityDays': 'Lifetime of an issued serving certificate.',
  'registry.listen': 'HOST:PORT the registry HTTPS server listens on.',
  'registry.storageDir': 'Blob storage directory.',
  'registry.tls.enabled': 'Serve the registry over HTTPS (with the serving certificate); plain HTTP when false.',
  'registry.tokenTtlSeconds': 'Lifetime of registry bearer tokens.',
  'scanner.listen': 'HOST:PORT the scanner HTTPS server listens on.',
  'scanner.trivyPath': 'The trivy executable (a name on PATH or a path); without it the scanner is not ready.',
  'scanner.cacheDir': 'Trivy\'s cache: the vulnerability database and layer cache.',
  'scanner.concurrency': 'Scans run at the same time.',
  'scanner.timeoutSeconds': 'A scan running longer is killed with its process tree and fails (a hung scan is not retried).',
  'scanner.insecure': 'Let Trivy pull from the registry without verifying TLS (tests only).',
  'scanner.extraArgs': 'Extra arguments for `trivy image`.',
  'audit.batchSize': 'Most decisions written per database insert.',
  'audit.flushIntervalMs': 'How often buffered decisions are written.',
  'audit.client.url': 'Audit API URL for `portcullis audit …` commands.',
  'audit.client.username': 'User for `portcullis audit …` (a registry user with the auditor role).',
  'audit.client.password': 'Its password.',
  'audit.client.token': 'Bearer token for `portcullis audit …` (audit.apiToken of the server).',
  'audit.client.caFile': 'CA that signed the audit API certificate.',
};

type SchemaNode = { type?: string; enum?: readonly unknown[]; properties?: Record<string, SchemaNode> };

function enumOf(path: string[]): readonly unknown[] | undefined {
  let node: SchemaNode | undefined = configSchema as unknown as SchemaNode;
  for (const key of path) node = node?.properties?.[key];
  return node?.enum;
}

function defaultOf(path: string[]): string {
  let node: unknown = defaultConfig('./.portcullis');
  for (const key of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  if (node === undefined) return '(not set)';
  if (Array.isArray(node)) return node.length === 0 ? '(empty)' : `\`${node.join(',')}\``;
  if (typeof node === 'number' && !Number.isInteger(node)) return `\`${Number(node.toFixed(4))}\``;
  return `\`${String(node)}\``;
}

const escape = (text: string) => text.replace(/\|/g, '\\|');

/** The Markdown table, between its markers. */
export function renderConfigurationTable(): string {
  const comments = fieldComments();
  const rows = envBindings().map((binding) => {
    const path = binding.path.join('.');
    const comment = comments.get(path) ?? FALLBACK[path] ?? '';
    const values = enumOf(binding.path);
    const type = values ? values.map((value) => `\`${String(value)}\``).join(', ') : binding.type === 'array' ? 'list (comma-separated)' : binding.type;
    return `| \`${path}\` | \`${binding.name}\` | ${type} | ${escape(defaultOf(binding.path))} | ${escape(comment)} |`;
  });
  return [BEGIN, '', '| field | environment variable | type | default | meaning |', '| --- | --- | --- | --- | --- |', ...rows, '', END].join('\n');
}

/** The doc with its generated section replaced. Throws when the markers are missing. */
export function withTable(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC_PATH}: the generated-table markers are missing`);
  return `${doc.slice(0, start)}${renderConfigurationTable()}${doc.slice(end + END.length)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(DOC_PATH, withTable(readFileSync(DOC_PATH, 'utf8')));
  process.stdout.write(`updated ${DOC_PATH}\n`);
}
