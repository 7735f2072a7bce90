import { createHash, randomUUID } from 'node:crypto';
import { formatImageReference, type ImageReference } from '../../src/policy/image-reference.js';
import type { Verdict } from '../../src/policy/types.js';
import type { VerdictOptions, VerdictSource } from '../../src/verdicts/source.js';

/**
 * Builders of AdmissionReview requests as kube-apiserver sends them, and a scriptable verdict
 * source, for the admission tests and the benchmark.
 */

export const RESOURCES: Record<string, { group: string; version: string; resource: string; apiVersion: string }> = {
  Pod: { group: '', version: 'v1', resource: 'pods', apiVersion: 'v1' },
  ReplicationController: { group: '', version: 'v1', resource: 'replicationcontrollers', apiVersion: 'v1' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments', apiVersion: 'apps/v1' },
  ReplicaSet: { group: 'apps', version: 'v1', resource: 'replicasets', apiVersion: 'apps/v1' },
  StatefulSet: { group: 'apps', version: 'v1', resource: 'statefulsets', apiVersion: 'apps/v1' },
  DaemonSet: { group: 'apps', version: 'v1', resource: 'daemonsets', apiVersion: 'apps/v1' },
  Job: { group: 'batch', version: 'v1', resource: 'jobs', apiVersion: 'batch/v1' },
  CronJob: { group: 'batch', version: 'v1', resource: 'cronjobs', apiVersion: 'batch/v1' },
  ConfigMap: { group: '', version: 'v1', resource: 'configmaps', apiVersion: 'v1' },
};

export interface PodSpecInput {
  containers: string[];
  initContainers?: string[];
  ephemeralContainers?: string[];
  imagePullSecrets?: string[];
}

export function podSpec(input: PodSpecInput): Record<string, unknown> {
  const list = (images: string[], prefix: string) => images.map((image, index) => ({ name: `${prefix}${index}`, image }));
  const spec: Record<string, unknown> = { containers: list(input.containers, 'app-') };
  if (input.initContainers) spec.initContainers = list(input.initContainers, 'init-');
  if (input.ephemeralContainers) spec.ephemeralContainers = list(input.ephemeralContainers, 'debug-');
  if (input.imagePullSecrets) spec.imagePullSecrets = input.imagePullSecrets.map((name) => ({ name }));
  return spec;
}

/** A workload object of `kind` whose pod spec holds the given images. */
export function workload(
  kind: string,
  input: PodSpecInput & { name?: string; namespace?: string; annotations?: Record<string, string> },
): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name: input.name ?? 'app', namespace: input.namespace ?? 'team-a' };
  if (input.annotations) metadata.annotations = input.annotations;
  const apiVersion = RESOURCES[kind]?.apiVersion ?? 'v1';
  const template = { metadata: { labels: { app: 'app' } }, spec: podSpec(input) };
  switch (kind) {
    case 'Pod':
      return { apiVersion, kind, metadata, spec: podSpec(input) };
    case 'CronJob':
      return { apiVersion, kind, metadata, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template } } } };
    case 'ConfigMap':
      return { apiVersion, kind, metadata, data: { image: input.containers[0] ?? '' } };
    default:
      return { apiVersion, kind, metadata, spec: { selector: { matchLabels: { app: 'app' } }, template } };
  }
}

export interface ReviewInput {
  object: Record<string, unknown> | null;
  oldObject?: Record<string, unknown> | null;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  uid?: string;
  dryRun?: boolean;
  subResource?: string;
  kind?: string;
  namespace?: string;
}

/** An AdmissionReview v1 request for `object` (kind taken from it unless given). */
export function admissionReview(input: ReviewInput): Record<string, unknown> {
  const object = input.object;
  const kind = input.kind ?? (typeof object?.kind === 'string' ? object.kind : 'Pod');
  const resource = RESOURCES[kind] ?? { group: '', version: 'v1', resource: `${kind.toLowerCase()}s` };
  const metadata = (object?.metadata ?? input.oldObject?.metadata ?? {}) as { name?: string; namespace?: string };
  const gvk = { group: resource.group, version: resource.version, kind };
  const gvr = { group: resource.group, version: resource.version, resource: resource.resource };
  const request: Record<string, unknown> = {
    uid: input.uid ?? randomUUID(),
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    name: metadata.name ?? '',
    namespace: input.namespace ?? metadata.namespace ?? 'team-a',
    operation: input.operation ?? 'CREATE',
    userInfo: { username: 'alice@example.com', uid: 'u-1', groups: ['system:authenticated', 'developers'] },
    object: input.object,
    oldObject: input.oldObject ?? null,
    dryRun: input.dryRun ?? false,
    options: input.operation === 'CONNECT' ? null : { apiVersion: 'meta.k8s.io/v1', kind: `${(input.operation ?? 'CREATE')[0]}${(input.operation ?? 'CREATE').slice(1).toLowerCase()}Options` },
  };
  if (input.subResource) {
    request.subResource = input.subResource;
    request.requestSubResource = input.subResource;
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

/**
 * A verdict source answering from a table keyed by image reference (normalised). Tags resolve to
 * the digest given; `hang` makes every call wait until its signal aborts (a source that does not
 * answer). Counts calls, so tests can check de-duplication and caching.
 */
export class ScriptedSource implements VerdictSource {
  readonly name = 'scripted';
  hang = false;
  resolveCalls = 0;
  verdictCalls = 0;
  scanRequests: string[] = [];
  readonly #table = new Map<string, { digest: string; verdict: Verdict }>();

  set(image: string, digest: string, verdict: Omit<Verdict, 'digest'> & { digest?: string }): this {
    this.#table.set(image, { digest, verdict: { ...verdict, digest } as Verdict });
    return this;
  }

  #find(reference: ImageReference): { digest: string; verdict: Verdict } | undefined {
    const { digest: _pinned, ...unpinned } = reference;
    const key = formatImageReference(unpinned);
    for (const [image, entry] of this.#table) {
      if (image === key || image === reference.original || entry.digest === reference.digest) return entry;
    }
    return undefined;
  }

  async #wait(signal: AbortSignal): Promise<void> {
    if (!this.hang) return;
    await new Promise<void>((_resolve, reject) => {
      const fail = () => reject(new Error('aborted'));
      if (signal.aborted) fail();
      signal.addEventListener('abort', fail, { once: true });
    });
  }

  async resolveDigest(reference: ImageReference, options: VerdictOptions): Promise<string | undefined> {
    this.resolveCalls += 1;
    await this.#wait(options.signal);
    // An image without an entry exists but was never scanned: it resolves to a digest of its name.
    return reference.digest ?? this.#find(reference)?.digest ?? `sha256:${createHash('sha256').update(reference.original).digest('hex')}`;
  }

  async verdict(reference: ImageReference, digest: string, options: VerdictOptions): Promise<Verdict> {
    this.verdictCalls += 1;
    await this.#wait(options.signal);
    const entry = this.#find(reference);
    if (!entry) {
      if (options.triggerScan) this.scanRequests.push(digest);
      return { state: 'unscanned', digest, reason: 'never scanned' };
    }
    return entry.verdict;
  }
}
