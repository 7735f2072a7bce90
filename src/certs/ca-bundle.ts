import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { isConflict, type KubeClient } from '../kube/client.js';
import type { WebhookConfigNames } from './webhook-configs.js';

/**
 * Keeps `clientConfig.caBundle` of every webhook in the two configurations equal to the CA bundle.
 * Each configuration is read, compared and replaced with the resourceVersion that was read, so a
 * concurrent writer (another replica, `kubectl apply`, a GitOps controller) is never overwritten
 * blindly: on 409 the configuration is read again and compared again.
 */

export type InjectionOutcome = 'unchanged' | 'updated' | 'missing';

export interface InjectionReport {
  validating: InjectionOutcome;
  mutating: InjectionOutcome;
}

type AnyWebhookConfiguration = V1ValidatingWebhookConfiguration | V1MutatingWebhookConfiguration;

interface ConfigurationApi<T extends AnyWebhookConfiguration> {
  get(name: string): Promise<T | undefined>;
  replace(name: string, object: T): Promise<T>;
}

const MAX_ATTEMPTS = 5;

export function encodeCaBundle(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

/** The webhooks of `configuration` whose caBundle differs from `encoded`. */
export function staleWebhooks(configuration: AnyWebhookConfiguration, encoded: string): string[] {
  return (configuration.webhooks ?? []).filter((webhook) => webhook.clientConfig.caBundle !== encoded).map((webhook) => webhook.name);
}

async function injectOne<T extends AnyWebhookConfiguration>(api: ConfigurationApi<T>, name: string, encoded: string): Promise<InjectionOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    const current = await api.get(name);
    if (!current) return 'missing';
    if (staleWebhooks(current, encoded).length === 0) return 'unchanged';
    const webhooks = (current.webhooks ?? []).map((webhook) => ({ ...webhook, clientConfig: { ...webhook.clientConfig, caBundle: encoded } }));
    try {
      await api.replace(name, { ...current, webhooks });
      return 'updated';
    } catch (error) {
      if (!isConflict(error) || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

/** Makes every webhook of both configurations carry `caBundlePem`. Idempotent; throws KUBE_API_ERROR. */
export async function injectCaBundle(kube: KubeClient, names: WebhookConfigNames, caBundlePem: string): Promise<InjectionReport> {
  const encoded = encodeCaBundle(caBundlePem);
  return {
    validating: await injectOne(kube.validatingWebhooks, names.validating, encoded),
    mutating: await injectOne(kube.mutatingWebhooks, names.mutating, encoded),
  };
}

/** Read-only: the webhooks (as `configuration/webhook`) whose caBundle is not `caBundlePem`. */
export async function findStaleCaBundles(kube: KubeClient, names: WebhookConfigNames, caBundlePem: string): Promise<string[]> {
  const encoded = encodeCaBundle(caBundlePem);
  const stale: string[] = [];
  for (const [api, name] of [
    [kube.validatingWebhooks, names.validating],
    [kube.mutatingWebhooks, names.mutating],
  ] as const) {
    const configuration = await api.get(name);
    if (configuration) stale.push(...staleWebhooks(configuration, encoded).map((webhook) => `${name}/${webhook}`));
  }
  return stale;
}
