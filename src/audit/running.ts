/**
 * The background audit: which running pods would be refused today. It keeps every pod and
 * namespace of the cluster through list + watch, takes each container's digest from the pod's
 * status (`imageID`), looks up what is known about the digest (never starting a scan), evaluates
 * the current policies with the same engine as the webhook, and keeps the violations. A pod
 * change re-evaluates that pod; a finished scan, a new Trivy database or a policy change
 * re-evaluates everything (`rerun`).
 */
import type { V1Container, V1ContainerStatus, V1Namespace, V1Pod } from '@kubernetes/client-node';
import picomatch from 'picomatch';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { describeError } from '../errors.js';
import type { KubeClient, PolicyReport } from '../kube/client.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { PolicySet } from '../policy/compile.js';
import { evaluate, needsVerdict } from '../policy/evaluate.js';
import { parseImageReference } from '../policy/image-reference.js';
import { SEVERITIES, severityRank, type AdmissionContext, type ReviewedImage, type Severity, type Verdict } from '../policy/types.js';
import type { VerdictSource } from '../verdicts/source.js';
import type { RunningReport, RunningViolation } from './api-schemas.js';
import type { Clock } from './clock.js';
import { digestFromImageId } from './filter.js';
import { startInformer, type Informer } from './informer.js';
import { buildPolicyReport, type PolicyReportWriter } from './policy-reports.js';

/** What the background audit needs of the policy store (src/policy/store.ts). */
export interface PolicySource {
  current(): PolicySet | undefined;
  onChange(listener: (set: PolicySet) => void): () => void;
}

export interface BackgroundAuditDeps {
  kube: KubeClient;
  policies: PolicySource;
  verdicts: VerdictSource;
  logger: Logger;
  metrics: Registry;
  clock: Clock;
  /** Namespaces never audited (globs), as for the webhook. */
  excludedNamespaces?: readonly string[];
  /** Writes PolicyReports after each evaluation when given. */
  reports?: { writer: PolicyReportWriter; maxResults: number };
  /** How long one verdict lookup may take (default 10 s); a lookup that times out counts as `unavailable`. */
  verdictTimeoutMs?: number;
}

export interface BackgroundAudit {
  /** Lists and starts watching; resolves after the first full evaluation. */
  start(): Promise<void>;
  /**
   * Re-evaluates every known pod with the current policies and verdicts. Calls during a run are
   * folded into one more run after it. Resolves when a run that began after this call finished.
   */
  rerun(reason: string): Promise<void>;
  /** The violations now. */
  report(): RunningReport;
  /** Called after every evaluation (full or of one pod). Returns an unsubscribe function. */
  onEvaluated(listener: (report: RunningReport) => void): () => void;
  close(): Promise<void>;
}

interface PodResult {
  namespace: string;
  name: string;
  uid: string;
  violations: RunningViolation[];
  passed: number;
}

type ContainerType = ReviewedImage['containerType'];
const CONTAINER_TYPES: readonly [ContainerType, 'containerStatuses' | 'initContainerStatuses' | 'ephemeralContainerStatuses'][] = [
  ['containers', 'containerStatuses'],
  ['initContainers', 'initContainerStatuses'],
  ['ephemeralContainers', 'ephemeralContainerStatuses'],
];

function podKey(pod: V1Pod): string {
  return pod.metadata?.uid ?? `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

function isLive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && pod.metadata?.deletionTimestamp === undefined;
}

function owner(pod: V1Pod): string | undefined {
  const controller = pod.metadata?.ownerReferences?.find((reference) => reference.controller) ?? pod.metadata?.ownerReferences?.[0];
  return controller ? `${controller.kind}/${controller.name}` : undefined;
}

function worstSeverity(verdict: Verdict | undefined): Severity | undefined {
  if (verdict?.state !== 'scanned' || verdict.findings.length === 0) return undefined;
  return verdict.findings.reduce<Severity>((worst, finding) => (severityRank(finding.severity) > severityRank(worst) ? finding.severity : worst), SEVERITIES[0]);
}

export function createBackgroundAudit(deps: BackgroundAuditDeps): BackgroundAudit {
  const log = deps.logger.child({ [F.component]: 'background-audit' });
  const excluded = picomatch([...(deps.excludedNamespaces ?? [])].length > 0 ? [...(deps.excludedNamespaces ?? [])] : ['\u0000none']);
  const verdictTimeoutMs = deps.verdictTimeoutMs ?? 10_000;
  const evaluations = new Counter({ name: 'portcullis_background_audit_runs_total', help: 'Full re-evaluations of running pods, by trigger.', labelNames: ['reason'], registers: [deps.metrics] });
  const violatingGauge = new Gauge({ name: 'portcullis_background_audit_violating_pods', help: 'Running pods that break a policy now.', registers: [deps.metrics] });
  const duration = new Histogram({ name: 'portcullis_background_audit_duration_seconds', help: 'Time of one full re-evaluation.', registers: [deps.metrics], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30] });

  const pods = new Map<string, V1Pod>();
  const namespaceLabels = new Map<string, Record<string, string>>();
  const results = new Map<string, PodResult>();
  const listeners = new Set<(report: RunningReport) => void>();
  let state: RunningReport['state'] = 'starting';
  let evaluatedAt: string | null = null;
  let lastReason: string | null = null;
  let informers: Informer[] = [];
  let unsubscribe: (() => void) | undefined;
  let running: Promise<void> | undefined;
  let pending: { reason: string; done: Promise<void>; resolve: () => void } | undefined;
  let closed = false;

  async function lookup(image: ReviewedImage, digest: string, memo: Map<string, Promise<Verdict>>): Promise<Verdict> {
    const key = `${image.reference.registry}/${image.reference.repository}@${digest}`;
    let found = memo.get(key);
    if (!found) {
      const signal = AbortSignal.timeout(verdictTimeoutMs);
      found = deps.verdicts.verdict(image.reference, digest, { signal, triggerScan: false }).catch(
        (error: unknown): Verdict => ({ state: 'unavailable', digest, reason: `${deps.verdicts.name}: ${describeError(error)}` }),
      );
      memo.set(key, found);
    }
    return found;
  }

  /** Evaluates one pod; undefined when it is not audited (finished, excluded, no policies). */
  async function evaluatePod(pod: V1Pod, set: PolicySet, memo: Map<string, Promise<Verdict>>): Promise<PodResult | undefined> {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    if (!isLive(pod) || excluded(namespace)) return undefined;
    const context: AdmissionContext = { namespace, namespaceLabels: namespaceLabels.get(namespace) ?? {} };
    const images: ReviewedImage[] = [];
    for (const [containerType, statusField] of CONTAINER_TYPES) {
      const containers: (V1Container | { name: string; image?: string })[] = pod.spec?.[containerType] ?? [];
      const statuses: V1ContainerStatus[] = pod.status?.[statusField] ?? [];
      for (const [index, container] of containers.entries()) {
        if (!container.image) continue;
        let reference;
        try {
          reference = parseImageReference(container.image);
        } catch (error) {
          log.warn({ [F.namespace]: namespace, [F.name]: name, [F.image]: container.image, [F.err]: describeError(error) }, 'pod image not understood; skipped');
          continue;
        }
        const status = statuses.find((candidate) => candidate.name === container.name);
        // Only what actually runs is audited: the digest the kubelet reports, or a pinned one.
        const digest = digestFromImageId(status?.imageID) ?? reference.digest;
        if (digest === undefined) continue;
        images.push({ pointer: `/spec/${containerType}/${index}/image`, container: container.name, containerType, reference, digest });
      }
    }
    for (const image of images) {
      if (image.digest && needsVerdict(set, context, image)) image.verdict = await lookup(image, image.digest, memo);
    }
    const evaluation = evaluate(set, context, images, new Date(deps.clock.now()));
    const byPointer = new Map(images.map((image) => [image.pointer, image]));
    const violations: RunningViolation[] = [];
    let passed = 0;
    for (const result of evaluation.results) {
      if (result.status === 'pass') passed += 1;
      if (result.status !== 'fail' && result.status !== 'warn' && result.status !== 'error') continue;
      const image = result.pointer ? byPointer.get(result.pointer) : undefined;
      const violation: RunningViolation = {
        namespace,
        pod: name,
        container: image?.container ?? '',
        image: result.image ?? image?.reference.original ?? '',
        policy: result.policy,
        rule: result.rule,
        status: result.status,
        action: result.action,
        message: result.message,
      };
      const podOwner = owner(pod);
      if (podOwner) violation.owner = podOwner;
      const digest = result.digest ?? image?.digest;
      if (digest) violation.digest = digest;
      const severity = result.rule === 'vulnerabilities' ? worstSeverity(image?.verdict) : undefined;
      if (severity) violation.severity = severity;
      violations.push(violation);
    }
    return { namespace, name, uid: pod.metadata?.uid ?? '', violations, passed };
  }

  function report(): RunningReport {
    const violations = [...results.values()].flatMap((result) => result.violations);
    violations.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod) || a.container.localeCompare(b.container) || a.policy.localeCompare(b.policy));
    const violatingPods = [...results.values()].filter((result) => result.violations.length > 0).length;
    return { state, evaluatedAt, reason: lastReason, pods: results.size, violatingPods, violations };
  }

  async function writeReports(): Promise<void> {
    if (!deps.reports) return;
    const byNamespace = new Map<string, { violations: RunningViolation[]; passed: number; podUids: Map<string, string> }>();
    for (const result of results.values()) {
      const entry = byNamespace.get(result.namespace) ?? { violations: [], passed: 0, podUids: new Map<string, string>() };
      entry.violations.push(...result.violations);
      entry.passed += result.passed;
      entry.podUids.set(result.name, result.uid);
      byNamespace.set(result.namespace, entry);
    }
    const reports = new Map<string, PolicyReport>();
    for (const [namespace, entry] of byNamespace) {
      const built = buildPolicyReport(namespace, entry, deps.clock.now(), deps.reports.maxResults);
      if (built) reports.set(namespace, built);
    }
    const namespaces = [...namespaceLabels.keys()].filter((namespace) => !excluded(namespace));
    await deps.reports.writer.sync(namespaces, reports);
  }

  function emit(): void {
    const current = report();
    violatingGauge.set(current.violatingPods);
    for (const listener of listeners) listener(current);
  }

  async function fullRun(reason: string): Promise<void> {
    const set = deps.policies.current();
    const stop = duration.startTimer();
    evaluations.inc({ reason });
    const memo = new Map<string, Promise<Verdict>>();
    const fresh = new Map<string, PodResult>();
    if (set) {
      for (const [key, pod] of pods) {
        const result = await evaluatePod(pod, set, memo);
        if (result) fresh.set(key, result);
      }
    }
    results.clear();
    for (const [key, result] of fresh) results.set(key, result);
    state = 'ready';
    evaluatedAt = new Date(deps.clock.now()).toISOString();
    lastReason = reason;
    stop();
    log.info({ [F.reason]: reason, [F.pods]: results.size, [F.violating]: report().violatingPods }, 'running pods evaluated');
    await writeReports();
    emit();
  }

  function rerun(reason: string): Promise<void> {
    if (closed) return Promise.resolve();
    if (!running) {
      running = fullRun(reason)
        .catch((error: unknown) => log.error({ [F.reason]: reason, [F.err]: describeError(error) }, 'background audit run failed'))
        .finally(() => {
          running = undefined;
          const next = pending;
          pending = undefined;
          if (next) void rerun(next.reason).then(next.resolve);
        });
      return running;
    }
    if (!pending) {
      let resolve: () => void = () => undefined;
      const done = new Promise<void>((settle) => (resolve = settle));
      pending = { reason, done, resolve };
    } else pending.reason = `${pending.reason}, ${reason}`;
    return pending.done;
  }

  /** A single pod changed: evaluate it alone (a full run under way will see it too). */
  async function podChanged(pod: V1Pod): Promise<void> {
    const set = deps.policies.current();
    if (!set || state !== 'ready') return;
    try {
      const result = await evaluatePod(pod, set, new Map());
      const key = podKey(pod);
      if (!pods.has(key)) return;
      if (result) results.set(key, result);
      else results.delete(key);
      await writeReports();
      emit();
    } catch (error) {
      log.error({ [F.namespace]: pod.metadata?.namespace, [F.name]: pod.metadata?.name, [F.err]: describeError(error) }, 'pod evaluation failed');
    }
  }

  function podRemoved(key: string): void {
    pods.delete(key);
    if (results.delete(key)) {
      void writeReports().then(emit);
    }
  }

  return {
    async start() {
      unsubscribe = deps.policies.onChange(() => void rerun('policies changed'));
      const namespaces = startInformer<V1Namespace>({
        resource: 'namespaces',
        list: () => deps.kube.namespaces.list(),
        watch: (resourceVersion, listener) => deps.kube.namespaces.watch({ resourceVersion }, listener),
        onList: (items) => {
          namespaceLabels.clear();
          for (const namespace of items) if (namespace.metadata?.name) namespaceLabels.set(namespace.metadata.name, { ...(namespace.metadata.labels ?? {}) });
        },
        onEvent: (type, namespace) => {
          const name = namespace.metadata?.name;
          if (!name) return;
          const before = JSON.stringify(namespaceLabels.get(name) ?? null);
          if (type === 'DELETED') namespaceLabels.delete(name);
          else namespaceLabels.set(name, { ...(namespace.metadata?.labels ?? {}) });
          // Policies may match namespace labels: a label change can change every pod's result there.
          if (state === 'ready' && before !== JSON.stringify(namespaceLabels.get(name) ?? null)) void rerun(`namespace ${name} changed`);
        },
        logger: log,
        clock: deps.clock,
      });
      const podInformer = startInformer<V1Pod>({
        resource: 'pods',
        list: () => deps.kube.pods.list(undefined),
        watch: (resourceVersion, listener) => deps.kube.pods.watch(undefined, { resourceVersion }, listener),
        onList: (items) => {
          pods.clear();
          for (const pod of items) pods.set(podKey(pod), pod);
          if (state === 'ready') void rerun('pods listed again');
        },
        onEvent: (type, pod) => {
          const key = podKey(pod);
          if (type === 'DELETED') return podRemoved(key);
          pods.set(key, pod);
          void podChanged(pod);
        },
        logger: log,
        clock: deps.clock,
      });
      informers = [namespaces, podInformer];
      await Promise.all([namespaces.synced, podInformer.synced]);
      await rerun('start');
    },
    rerun,
    report,
    onEvaluated(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      unsubscribe?.();
      await Promise.all(informers.map((informer) => informer.stop()));
      if (running) await running;
      pending?.resolve();
    },
  };
}
