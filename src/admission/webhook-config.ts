import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PortcullisError, describeError } from '../errors.js';

/**
 * What the server takes from `webhooks/*.yaml` (the one source of truth for the webhook
 * configurations): the path each webhook is called on and its timeout, from which the verdict
 * deadline is derived.
 */
export interface WebhookEndpoint {
  /** `clientConfig.service.path` (`/validate`). */
  path: string;
  /** `timeoutSeconds` (Kubernetes' default 10 when absent). */
  timeoutSeconds: number;
  file: string;
}

export interface WebhookSettings {
  validate: WebhookEndpoint;
  mutate: WebhookEndpoint;
}

const KINDS = {
  ValidatingWebhookConfiguration: 'validate',
  MutatingWebhookConfiguration: 'mutate',
} as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(file: string, message: string): PortcullisError {
  return new PortcullisError('CONFIG_INVALID', `${file}: ${message}`, { detail: { file } });
}

/**
 * Reads every `*.yaml` in `dir` and returns the validating and mutating endpoints. Throws
 * CONFIG_INVALID naming the file when either configuration is missing, has no webhook, or has no
 * service path, or when the timeout is outside Kubernetes' 1..30.
 */
export function readWebhookSettings(dir: string): WebhookSettings {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort();
  } catch (error) {
    throw invalid(dir, `cannot read the webhooks directory: ${describeError(error)}`);
  }
  const found: Partial<WebhookSettings> = {};
  for (const name of names) {
    const file = join(dir, name);
    const documents = parseAllDocuments(readFileSync(file, 'utf8'));
    for (const document of Array.isArray(documents) ? documents : [documents]) {
      if (document.errors.length > 0) throw invalid(file, `not valid YAML: ${document.errors[0]?.message ?? ''}`);
      const value: unknown = document.toJS();
      if (!isRecord(value) || typeof value.kind !== 'string' || !Object.hasOwn(KINDS, value.kind)) continue;
      const which = KINDS[value.kind as keyof typeof KINDS];
      const webhooks = value.webhooks;
      const first = Array.isArray(webhooks) ? (webhooks[0] as unknown) : undefined;
      if (!isRecord(first)) throw invalid(file, `${value.kind} /webhooks/0: a webhook is required`);
      const clientConfig = first.clientConfig;
      const service = isRecord(clientConfig) ? clientConfig.service : undefined;
      const path = isRecord(service) ? service.path : undefined;
      if (typeof path !== 'string' || !path.startsWith('/')) {
        throw invalid(file, `${value.kind} /webhooks/0/clientConfig/service/path: must be a path starting with "/", got ${JSON.stringify(path)}`);
      }
      const timeout = first.timeoutSeconds ?? 10;
      if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 30) {
        throw invalid(file, `${value.kind} /webhooks/0/timeoutSeconds: must be an integer from 1 to 30, got ${JSON.stringify(timeout)}`);
      }
      found[which] = { path, timeoutSeconds: timeout, file };
    }
  }
  if (!found.validate) throw invalid(dir, 'no ValidatingWebhookConfiguration found');
  if (!found.mutate) throw invalid(dir, 'no MutatingWebhookConfiguration found');
  if (found.validate.path === found.mutate.path) throw invalid(dir, `both webhooks use the path ${found.validate.path}`);
  return { validate: found.validate, mutate: found.mutate };
}
