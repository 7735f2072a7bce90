/**
 * A stand-in for kube-apiserver's admission chain, faithful where Portcullis's behaviour depends
 * on it (k8s.io/apiserver/pkg/admission/plugin/webhook). For each create or update it:
 *
 * 1. selects webhooks like the apiserver: configurations sorted by name, webhooks in file order;
 *    `rules` (operations, apiGroups, apiVersions, resources with `*`, `*\/*`, `pods/*` and
 *    subresources, scope), `namespaceSelector` (the namespace's labels, with the automatic
 *    `kubernetes.io/metadata.name`; a Namespace object uses its own labels; other cluster-scoped
 *    objects always match), `objectSelector` (object or oldObject labels), then `matchConditions`
 *    (CEL, through the subset in cel-subset.ts; an evaluation error follows the failurePolicy);
 * 2. calls the matching mutating webhooks one after another over HTTPS, verifying the server
 *    against the webhook's `caBundle` only, with `?timeout=Ns` appended and the call aborted after
 *    `timeoutSeconds`; applies each JSONPatch (RFC 6902) to the object handed to the next one;
 *    re-invokes once the `reinvocationPolicy: IfNeeded` webhooks that ran before a later webhook
 *    changed the object;
 * 3. calls the matching validating webhooks in parallel with the final object;
 * 4. answers in the apiserver's words: a denial is `admission webhook "NAME" denied the request:
 *    MESSAGE` with the webhook's code (at least 400); a call failure under `failurePolicy: Fail`
 *    is a 500 `Internal error occurred: failed calling webhook "NAME": …`; under `Ignore` the
 *    request goes on (the call is recorded as failed open).
 *
 * Deliberate simplifications: one AdmissionReview version (v1) and `matchPolicy` has nothing to
 * convert; when several validating webhooks reject, the first in configuration order is reported
 * (the apiserver reports whichever finished first); no other admission plugins run.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { parseAllDocuments } from 'yaml';
import { CelError, compileCel } from './cel-subset.js';
import { applyJsonPatch, jsonEqual } from './json-patch-apply.js';

export type Labels = Record<string, string>;

export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface RuleWithOperations {
  operations?: string[];
  apiGroups?: string[];
  apiVersions?: string[];
  resources?: string[];
  scope?: 'Cluster' | 'Namespaced' | '*';
}

export interface WebhookClientConfig {
  url?: string;
  service?: { name: string; namespace: string; path?: string; port?: number };
  caBundle?: string;
}

export interface Webhook {
  name: string;
  clientConfig: WebhookClientConfig;
  rules?: RuleWithOperations[];
  failurePolicy?: 'Fail' | 'Ignore';
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
  matchConditions?: { name: string; expression: string }[];
  sideEffects: string;
  timeoutSeconds?: number;
  admissionReviewVersions: string[];
  reinvocationPolicy?: 'Never' | 'IfNeeded';
}

export interface WebhookConfiguration {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'ValidatingWebhookConfiguration' | 'MutatingWebhookConfiguration';
  metadata: { name: string; labels?: Labels; annotations?: Record<string, string> };
  webhooks: Webhook[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the fields the chain relies on; the full schema check is test/manifests/structure.test.ts. */
export function asWebhookConfiguration(value: unknown, where: string): WebhookConfiguration {
  if (!isRecord(value)) throw new Error(`${where}: expected a mapping`);
  if (value.apiVersion !== 'admissionregistration.k8s.io/v1') throw new Error(`${where}: apiVersion must be admissionregistration.k8s.io/v1, got ${JSON.stringify(value.apiVersion)}`);
  if (value.kind !== 'ValidatingWebhookConfiguration' && value.kind !== 'MutatingWebhookConfiguration') throw new Error(`${where}: unexpected kind ${JSON.stringify(value.kind)}`);
  if (!isRecord(value.metadata) || typeof value.metadata.name !== 'string') throw new Error(`${where}: metadata.name is required`);
  if (!Array.isArray(value.webhooks)) throw new Error(`${where}: webhooks must be a list`);
  value.webhooks.forEach((webhook: unknown, index) => {
    const at = `${where} /webhooks/${index}`;
    if (!isRecord(webhook) || typeof webhook.name !== 'string') throw new Error(`${at}: name is required`);
    if (!isRecord(webhook.clientConfig)) throw new Error(`${at}: clientConfig is required`);
    if (!Array.isArray(webhook.admissionReviewVersions) || !webhook.admissionReviewVersions.includes('v1')) throw new Error(`${at}: admissionReviewVersions must include v1`);
    if (webhook.timeoutSeconds !== undefined && (typeof webhook.timeoutSeconds !== 'number' || webhook.timeoutSeconds < 1 || webhook.timeoutSeconds > 30)) {
      throw new Error(`${at}: timeoutSeconds must be 1..30, got ${JSON.stringify(webhook.timeoutSeconds)}`);
    }
  });
  return value as unknown as WebhookConfiguration;
}

/** Reads every webhook configuration in `dir` (`*.yaml`, several documents per file allowed; other kinds skipped). */
export function loadWebhookConfigurations(dir: string): WebhookConfiguration[] {
  const configurations: WebhookConfiguration[] = [];
  for (const file of readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).forEach((document, index) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
      const value: unknown = document.toJS();
      // Other documents (webhooks/kustomization.yaml) are not configurations; skip them as the server does.
      if (!isRecord(value) || (value.kind !== 'ValidatingWebhookConfiguration' && value.kind !== 'MutatingWebhookConfiguration')) return;
      configurations.push(asWebhookConfiguration(value, `${file}#${index}`));
    });
  }
  return configurations;
}

/**
 * What `portcullis webhooks render --url URL --ca CA` does to the client config: the Service
 * reference becomes `URL + service.path`, and the caBundle is the base64 of the CA PEM(s) (kept
 * as it is when no CA is given).
 */
export function pointAt(configurations: WebhookConfiguration[], target: { url: string; caPem?: string }): WebhookConfiguration[] {
  const caBundle = target.caPem === undefined ? undefined : Buffer.from(target.caPem).toString('base64');
  return configurations.map((configuration) => ({
    ...configuration,
    webhooks: configuration.webhooks.map((webhook) => {
      const path = webhook.clientConfig.service?.path ?? new URL(webhook.clientConfig.url ?? 'https://x/').pathname;
      // Without caPem the caBundle already in the configuration is kept (what the certificate
      // manager injected), as the apiserver would use it.
      const bundle = caBundle ?? webhook.clientConfig.caBundle;
      return { ...webhook, clientConfig: { url: `${target.url.replace(/\/+$/, '')}${path}`, ...(bundle ? { caBundle: bundle } : {}) } };
    }),
  }));
}

export function matchesSelector(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, expression.key);
    const value = labels[expression.key];
    const values = expression.values ?? [];
    switch (expression.operator) {
      case 'In':
        if (!present || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (present && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}

/** Kinds the chain knows how to address (kind → resource, scope). */
const RESOURCES: Record<string, { resource: string; namespaced: boolean }> = {
  Pod: { resource: 'pods', namespaced: true },
  ReplicationController: { resource: 'replicationcontrollers', namespaced: true },
  Deployment: { resource: 'deployments', namespaced: true },
  ReplicaSet: { resource: 'replicasets', namespaced: true },
  StatefulSet: { resource: 'statefulsets', namespaced: true },
  DaemonSet: { resource: 'daemonsets', namespaced: true },
  Job: { resource: 'jobs', namespaced: true },
  CronJob: { resource: 'cronjobs', namespaced: true },
  ConfigMap: { resource: 'configmaps', namespaced: true },
  Secret: { resource: 'secrets', namespaced: true },
  Service: { resource: 'services', namespaced: true },
  Namespace: { resource: 'namespaces', namespaced: false },
  Node: { resource: 'nodes', namespaced: false },
};

interface RequestAttributes {
  group: string;
  version: string;
  kind: string;
  resource: string;
  subResource: string;
  namespace: string;
  name: string;
  operation: 'CREATE' | 'UPDATE';
}

function matchesRule(rule: RuleWithOperations, attributes: RequestAttributes): boolean {
  const has = (list: string[] | undefined, value: string) => (list ?? []).some((item) => item === '*' || item === value);
  if (!has(rule.operations, attributes.operation) || !has(rule.apiGroups, attributes.group) || !has(rule.apiVersions, attributes.version)) return false;
  const scope = rule.scope ?? '*';
  if (scope === 'Cluster' && attributes.namespace !== '') return false;
  if (scope === 'Namespaced' && attributes.namespace === '') return false;
  return (rule.resources ?? []).some((pattern) => {
    const [resource, sub = ''] = pattern.split('/');
    if (pattern === '*') return attributes.subResource === '';
    if (resource !== '*' && resource !== attributes.resource) return false;
    if (!pattern.includes('/')) return attributes.subResource === '';
    return sub === '*' || sub === attributes.subResource;
  });
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
}

export interface AdmitInput {
  object: unknown;
  operation?: 'CREATE' | 'UPDATE';
  oldObject?: unknown;
  /** Defaults to metadata.namespace of the object, then `default` (cluster-scoped kinds: none). */
  namespace?: string;
  subResource?: string;
  userInfo?: UserInfo;
  dryRun?: boolean;
}

export type CallOutcome = 'allowed' | 'patched' | 'denied' | 'failed-open' | 'failed-closed' | 'skipped';

export interface WebhookCall {
  webhook: string;
  /** 0 for the first pass, 1 for a re-invocation. */
  round: 0 | 1;
  outcome: CallOutcome;
  detail?: string;
  durationMs: number;
}

export type AdmitResult =
  | { allowed: true; object: unknown; warnings: string[]; calls: WebhookCall[] }
  | { allowed: false; code: number; message: string; warnings: string[]; calls: WebhookCall[] };

export interface AdmissionChainOptions {
  /** The configurations, or a function read on every request (to follow caBundle updates). */
  configurations: WebhookConfiguration[] | (() => WebhookConfiguration[]);
  /** Labels of the namespaces that exist; `kubernetes.io/metadata.name` is added automatically. */
  namespaces?: Record<string, Labels>;
  /**
   * Open a new connection (a full TLS handshake) for every call instead of keeping connections
   * alive as the apiserver does; certificate rotation tests use it so that every call verifies
   * the certificate served at that moment.
   */
  freshConnections?: boolean;
}

/** Go's wording for the network errors the tests meet. */
function describeCallError(error: unknown, url: string): string {
  const prefix = `failed to call webhook: Post "${url}"`;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `${prefix}: context deadline exceeded`;
  const cause = error instanceof Error && error.cause instanceof Error ? (error.cause as Error & { code?: string; address?: string; port?: number }) : undefined;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return `${prefix}: dial tcp ${cause.address}:${cause.port}: connect: connection refused`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `${prefix}: EOF`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `${prefix}: tls: failed to verify certificate: x509: certificate signed by unknown authority`;
    case 'CERT_HAS_EXPIRED':
      return `${prefix}: tls: failed to verify certificate: x509: certificate has expired or is not yet valid`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `${prefix}: tls: failed to verify certificate: x509: certificate is not valid for this host`;
    default:
      return `${prefix}: ${cause?.message ?? (error instanceof Error ? error.message : String(error))}`;
  }
}

/** A webhook call or response problem: subject to the failurePolicy (apiserver's ErrCallingWebhook). */
class CallingWebhookError extends Error {}

interface ReviewResponse {
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string };
  patch?: string;
  patchType?: string;
  warnings?: string[];
}

function verifyResponse(body: unknown, uid: string, mutating: boolean): ReviewResponse {
  if (!isRecord(body) || body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview') {
    const got = isRecord(body) ? `${String(body.apiVersion)}, Kind=${String(body.kind)}` : typeof body;
    throw new CallingWebhookError(`received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${got}`);
  }
  const response = body.response;
  if (!isRecord(response)) throw new CallingWebhookError('received invalid webhook response: webhook response was absent');
  if (response.uid !== uid) throw new CallingWebhookError(`received invalid webhook response: expected response.uid="${uid}", got "${String(response.uid)}"`);
  if (typeof response.allowed !== 'boolean') throw new CallingWebhookError('received invalid webhook response: response.allowed must be a boolean');
  const hasPatch = typeof response.patch === 'string' && response.patch.length > 0;
  if (hasPatch && !mutating) throw new CallingWebhookError('received invalid webhook response: validating webhook may not return response.patch');
  if (hasPatch && response.patchType === undefined) throw new CallingWebhookError('received invalid webhook response: webhook returned response.patch but not response.patchType');
  if (!hasPatch && response.patchType !== undefined) throw new CallingWebhookError('received invalid webhook response: webhook returned response.patchType but not response.patch');
  if (response.patchType !== undefined && response.patchType !== 'JSONPatch') {
    throw new CallingWebhookError(`received invalid webhook response: webhook returned invalid response.patchType of "${String(response.patchType)}"`);
  }
  return response as unknown as ReviewResponse;
}

function labelsOf(object: unknown): Labels {
  if (!isRecord(object) || !isRecord(object.metadata) || !isRecord(object.metadata.labels)) return {};
  const labels: Labels = {};
  for (const [key, value] of Object.entries(object.metadata.labels)) if (typeof value === 'string') labels[key] = value;
  return labels;
}

/** Error text of a rejection, as `kubectl` prints it after `Error from server (…):`. */
export function denialMessage(webhook: string, status: ReviewResponse['status']): string {
  const deniedBy = `admission webhook "${webhook}" denied the request`;
  if (status?.message) return `${deniedBy}: ${status.message}`;
  if (status?.reason) return `${deniedBy}: ${status.reason}`;
  return `${deniedBy} without explanation`;
}

export class AdmissionChain {
  readonly #options: AdmissionChainOptions;
  readonly #agents = new Map<string, Agent>();

  constructor(options: AdmissionChainOptions) {
    this.#options = options;
  }

  /** Closes the HTTPS connection pools. */
  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => agent.close()));
    this.#agents.clear();
  }

  #configurations(kind: WebhookConfiguration['kind']): WebhookConfiguration[] {
    const all = typeof this.#options.configurations === 'function' ? this.#options.configurations() : this.#options.configurations;
    return all.filter((configuration) => configuration.kind === kind).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  #agent(caBundle: string | undefined): Agent {
    const key = caBundle ?? '';
    let agent = this.#agents.get(key);
    if (!agent) {
      // Like the apiserver: trust exactly the caBundle (system roots only when it is empty).
      agent = new Agent({
        connect: caBundle ? { ca: Buffer.from(caBundle, 'base64').toString('utf8') } : {},
        ...(this.#options.freshConnections ? { pipelining: 0 } : {}),
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  #namespaceLabels(namespace: string): Labels {
    return { ...(this.#options.namespaces?.[namespace] ?? {}), 'kubernetes.io/metadata.name': namespace };
  }

  /** Whether `webhook` is called for this request; throws CallingWebhookError for a matchCondition error. */
  #selects(webhook: Webhook, attributes: RequestAttributes, input: Required<Pick<AdmitInput, 'object'>> & AdmitInput, request: Record<string, unknown>): boolean {
    if (!(webhook.rules ?? []).some((rule) => matchesRule(rule, attributes))) return false;
    const namespaceLabels = attributes.kind === 'Namespace' && attributes.group === '' ? labelsOf(input.object) : attributes.namespace === '' ? undefined : this.#namespaceLabels(attributes.namespace);
    if (namespaceLabels && !matchesSelector(webhook.namespaceSelector, namespaceLabels)) return false;
    if (!matchesSelector(webhook.objectSelector, labelsOf(input.object)) && !(input.oldObject !== undefined && matchesSelector(webhook.objectSelector, labelsOf(input.oldObject)))) return false;
    const vars = { object: request.object ?? null, oldObject: request.oldObject ?? null, request };
    const errors: string[] = [];
    for (const condition of webhook.matchConditions ?? []) {
      try {
        if (!compileCel(condition.expression)(vars)) return false;
      } catch (error) {
        if (!(error instanceof CelError)) throw error;
        errors.push(`failed to evaluate match condition "${condition.name}": ${error.message}`);
      }
    }
    if (errors.length > 0) throw new CallingWebhookError(errors.join('; '));
    return true;
  }

  async #call(webhook: Webhook, review: { request: Record<string, unknown> }, mutating: boolean): Promise<ReviewResponse> {
    const timeoutSeconds = webhook.timeoutSeconds ?? 10;
    const base = webhook.clientConfig.url;
    if (!base) throw new CallingWebhookError('failed to call webhook: clientConfig.url is required by this harness (use pointAt)');
    const url = `${base}${base.includes('?') ? '&' : '?'}timeout=${timeoutSeconds}s`;
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, */*' },
        body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: review.request }),
        dispatcher: this.#agent(webhook.clientConfig.caBundle),
        signal: AbortSignal.timeout(timeoutSeconds * 1000),
      });
    } catch (error) {
      throw new CallingWebhookError(describeCallError(error, url));
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new CallingWebhookError(describeCallError(error, url));
    }
    if (response.status !== 200) {
      throw new CallingWebhookError(`failed to call webhook: an error on the server ("${text.slice(0, 200)}") has prevented the request from succeeding (status ${response.status})`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new CallingWebhookError(`received invalid webhook response: ${error instanceof Error ? error.message : String(error)}`);
    }
    return verifyResponse(body, String(review.request.uid), mutating);
  }

  /** Runs the chain for one create or update. Never throws for webhook behaviour; it answers. */
  async admit(input: AdmitInput): Promise<AdmitResult> {
    const object = input.object;
    if (!isRecord(object) || typeof object.kind !== 'string' || typeof object.apiVersion !== 'string') throw new Error('admit: object needs apiVersion and kind');
    const known = RESOURCES[object.kind];
    if (!known) throw new Error(`admit: the harness does not know kind ${object.kind}`);
    const [group, version] = object.apiVersion.includes('/') ? (object.apiVersion.split('/') as [string, string]) : ['', object.apiVersion];
    const metadata = isRecord(object.metadata) ? object.metadata : {};
    const namespace = known.namespaced ? (input.namespace ?? (typeof metadata.namespace === 'string' ? metadata.namespace : 'default')) : '';
    const attributes: RequestAttributes = {
      group,
      version,
      kind: object.kind,
      resource: known.resource,
      subResource: input.subResource ?? '',
      namespace,
      name: typeof metadata.name === 'string' ? metadata.name : '',
      operation: input.operation ?? 'CREATE',
    };
    const userInfo = input.userInfo ?? { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };
    const calls: WebhookCall[] = [];
    const warnings: string[] = [];
    let current: unknown = structuredClone(object);

    const requestFor = (): Record<string, unknown> => ({
      uid: randomUUID(),
      kind: { group, version, kind: attributes.kind },
      resource: { group, version, resource: attributes.resource },
      ...(attributes.subResource ? { subResource: attributes.subResource, requestSubResource: attributes.subResource } : {}),
      requestKind: { group, version, kind: attributes.kind },
      requestResource: { group, version, resource: attributes.resource },
      name: attributes.name,
      ...(namespace ? { namespace } : {}),
      operation: attributes.operation,
      userInfo,
      object: current,
      oldObject: input.oldObject ?? null,
      dryRun: input.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: attributes.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions', fieldManager: 'kubectl-client-side-apply' },
    });

    const failure = (webhook: Webhook, error: CallingWebhookError, round: 0 | 1, started: number): AdmitResult | undefined => {
      const detail = `failed calling webhook "${webhook.name}": ${error.message}`;
      const durationMs = performance.now() - started;
      if ((webhook.failurePolicy ?? 'Fail') === 'Ignore') {
        calls.push({ webhook: webhook.name, round, outcome: 'failed-open', detail, durationMs });
        return undefined;
      }
      calls.push({ webhook: webhook.name, round, outcome: 'failed-closed', detail, durationMs });
      return { allowed: false, code: 500, message: `Internal error occurred: ${detail}`, warnings, calls };
    };

    // Mutating webhooks, serially, with one re-invocation pass for IfNeeded webhooks.
    const mutating = this.#configurations('MutatingWebhookConfiguration').flatMap((configuration) => configuration.webhooks);
    const invoked: Webhook[] = [];
    const reinvoke = new Set<Webhook>();
    for (const round of [0, 1] as const) {
      for (const webhook of mutating) {
        if (round === 1 && !reinvoke.has(webhook)) continue;
        const started = performance.now();
        const request = requestFor();
        try {
          if (!this.#selects(webhook, attributes, { ...input, object: current }, request)) {
            if (round === 0) calls.push({ webhook: webhook.name, round, outcome: 'skipped', durationMs: 0 });
            continue;
          }
          const response = await this.#call(webhook, { request }, true);
          warnings.push(...(response.warnings ?? []));
          if (!response.allowed) {
            calls.push({ webhook: webhook.name, round, outcome: 'denied', durationMs: performance.now() - started });
            return { allowed: false, code: Math.max(response.status?.code ?? 403, 400), message: denialMessage(webhook.name, response.status), warnings, calls };
          }
          let changed = false;
          if (response.patch) {
            let patched: unknown;
            try {
              patched = applyJsonPatch(current, JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')));
            } catch (error) {
              // A patch that does not apply is an internal error whatever the failurePolicy.
              calls.push({ webhook: webhook.name, round, outcome: 'failed-closed', detail: String(error), durationMs: performance.now() - started });
              return { allowed: false, code: 500, message: `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`, warnings, calls };
            }
            changed = !jsonEqual(patched, current);
            current = patched;
          }
          calls.push({ webhook: webhook.name, round, outcome: changed ? 'patched' : 'allowed', durationMs: performance.now() - started });
          if (round === 0) {
            if (changed) for (const earlier of invoked) if (earlier.reinvocationPolicy === 'IfNeeded') reinvoke.add(earlier);
            invoked.push(webhook);
          }
        } catch (error) {
          if (!(error instanceof CallingWebhookError)) throw error;
          const rejected = failure(webhook, error, round, started);
          if (rejected) return rejected;
        }
      }
      if (reinvoke.size === 0) break;
    }

    // Validating webhooks, in parallel, on the final object.
    const validating = this.#configurations('ValidatingWebhookConfiguration').flatMap((configuration) => configuration.webhooks);
    const outcomes = await Promise.all(
      validating.map(async (webhook): Promise<AdmitResult | undefined> => {
        const started = performance.now();
        const request = requestFor();
        try {
          if (!this.#selects(webhook, attributes, { ...input, object: current }, request)) {
            calls.push({ webhook: webhook.name, round: 0, outcome: 'skipped', durationMs: 0 });
            return undefined;
          }
          const response = await this.#call(webhook, { request }, false);
          warnings.push(...(response.warnings ?? []));
          if (!response.allowed) {
            calls.push({ webhook: webhook.name, round: 0, outcome: 'denied', durationMs: performance.now() - started });
            return { allowed: false, code: Math.max(response.status?.code ?? 403, 400), message: denialMessage(webhook.name, response.status), warnings, calls };
          }
          calls.push({ webhook: webhook.name, round: 0, outcome: 'allowed', durationMs: performance.now() - started });
          return undefined;
        } catch (error) {
          if (!(error instanceof CallingWebhookError)) throw error;
          return failure(webhook, error, 0, started);
        }
      }),
    );
    const rejected = outcomes.find((outcome) => outcome !== undefined);
    if (rejected) return rejected;
    return { allowed: true, object: current, warnings, calls };
  }
}
