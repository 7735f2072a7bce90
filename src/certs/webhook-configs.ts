import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parseAllDocuments, type Document } from 'yaml';
import { PortcullisError, describeError } from '../errors.js';

/**
 * The two webhook configurations as written in `webhooks/*.yaml`: the source of their names (for
 * caBundle injection) and of what `portcullis webhooks render` prints.
 */

export type WebhookKind = 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration';

export interface WebhookConfigNames {
  validating: string;
  mutating: string;
}

interface FoundDocument {
  file: string;
  kind: WebhookKind;
  name: string;
  document: Document.Parsed;
}

function invalid(where: string, message: string): PortcullisError {
  return new PortcullisError('CONFIG_INVALID', `${where}: ${message}`, { detail: { file: where } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readDocuments(dir: string): FoundDocument[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort();
  } catch (error) {
    throw invalid(dir, `cannot read the webhooks directory: ${describeError(error)}`);
  }
  const found: FoundDocument[] = [];
  for (const name of files) {
    const file = join(dir, name);
    for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
      if (document.errors.length > 0) throw invalid(file, `not valid YAML: ${document.errors[0]?.message ?? ''}`);
      const value: unknown = document.toJS();
      if (!isRecord(value) || (value.kind !== 'ValidatingWebhookConfiguration' && value.kind !== 'MutatingWebhookConfiguration')) continue;
      const metadata = value.metadata;
      const configName = isRecord(metadata) && typeof metadata.name === 'string' ? metadata.name : undefined;
      if (!configName) throw invalid(file, `${value.kind} /metadata/name: expected a name, got none`);
      if (value.apiVersion !== 'admissionregistration.k8s.io/v1') {
        throw invalid(file, `${value.kind} ${configName} /apiVersion: expected admissionregistration.k8s.io/v1, got ${JSON.stringify(value.apiVersion)}`);
      }
      if (!Array.isArray(value.webhooks) || value.webhooks.length === 0) throw invalid(file, `${value.kind} ${configName} /webhooks: expected at least one webhook`);
      found.push({ file, kind: value.kind, name: configName, document });
    }
  }
  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'] as const) {
    const ofKind = found.filter((item) => item.kind === kind);
    if (ofKind.length !== 1) throw invalid(dir, `expected exactly one ${kind} in *.yaml, found ${ofKind.length}`);
  }
  return found;
}

/** The names of the two configurations in `dir`; throws CONFIG_INVALID naming the file when one is missing or malformed. */
export function readWebhookConfigNames(dir: string): WebhookConfigNames {
  const documents = readDocuments(dir);
  const name = (kind: WebhookKind) => documents.find((item) => item.kind === kind)?.name ?? '';
  return { validating: name('ValidatingWebhookConfiguration'), mutating: name('MutatingWebhookConfiguration') };
}

/** Where kube-apiserver should call the webhooks. */
export type WebhookTarget = { service: { name: string; namespace: string; port?: number } } | { url: string };

/**
 * Parses `--service SVC.NS` or `--url https://HOST:PORT` into a target; throws CONFIG_INVALID with
 * what was expected. Kubernetes requires an https URL without query or fragment.
 */
export function parseWebhookTarget(option: { service?: string; url?: string }): WebhookTarget {
  if ((option.service === undefined) === (option.url === undefined)) throw invalid('webhooks render', 'expected exactly one of --service SVC.NS or --url https://HOST:PORT');
  if (option.service !== undefined) {
    const match = option.service.match(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)(:(\d{1,5}))?$/);
    if (!match) throw invalid('--service', `expected SERVICE.NAMESPACE[:PORT] (DNS labels), got "${option.service}"`);
    return { service: { name: match[1] ?? '', namespace: match[3] ?? '', ...(match[6] ? { port: Number(match[6]) } : {}) } };
  }
  let url: URL;
  try {
    url = new URL(option.url ?? '');
  } catch {
    throw invalid('--url', `expected an absolute URL such as https://192.168.1.10:8443, got "${option.url ?? ''}"`);
  }
  if (url.protocol !== 'https:') throw invalid('--url', `kube-apiserver only calls webhooks over https, got "${url.protocol}"`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid('--url', `a webhook URL may not carry a query, fragment or user info, got "${option.url ?? ''}"`);
  }
  return { url: `${url.origin}${url.pathname.replace(/\/+$/, '')}` };
}

/**
 * Prints both configurations from `dir` (comments kept) with `caBundle` set on every webhook and
 * `clientConfig` pointed at `target`, as a multi-document YAML stream for `kubectl apply -f -`.
 */
export function renderWebhookConfigs(dir: string, caBundlePem: string, target: WebhookTarget): string {
  const caBundle = Buffer.from(caBundlePem, 'utf8').toString('base64');
  const rendered: string[] = [];
  for (const { document, file } of readDocuments(dir)) {
    const webhooks = document.get('webhooks');
    if (!isSeq(webhooks)) throw invalid(file, '/webhooks: expected a list');
    webhooks.items.forEach((webhook, index) => {
      if (!isMap(webhook)) throw invalid(file, `/webhooks/${index}: expected a mapping`);
      const clientConfig: unknown = webhook.toJSON();
      const current = isRecord(clientConfig) && isRecord(clientConfig.clientConfig) ? clientConfig.clientConfig : {};
      const service = isRecord(current.service) ? current.service : {};
      const path = typeof service.path === 'string' ? service.path : '';
      if ('service' in target) {
        const port = target.service.port ?? (typeof service.port === 'number' ? service.port : 443);
        document.setIn(['webhooks', index, 'clientConfig'], document.createNode({ service: { name: target.service.name, namespace: target.service.namespace, path, port }, caBundle }));
      } else {
        document.setIn(['webhooks', index, 'clientConfig'], document.createNode({ url: `${target.url}${path}`, caBundle }));
      }
    });
    rendered.push(document.toString({ lineWidth: 0 }).replace(/^---\n/, ''));
  }
  return rendered.map((text) => `---\n${text.trimEnd()}\n`).join('');
}
