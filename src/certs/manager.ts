import { Gauge, Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { PortcullisError, describeError, isPortcullisError } from '../errors.js';
import { setTls, type HttpServer, type TlsMaterial } from '../http/server.js';
import type { Readiness } from '../http/readiness.js';
import { F } from '../log/fields.js';
import type { Logger } from '../log/logger.js';
import type { KubeClient } from '../kube/client.js';
import { findStaleCaBundles, injectCaBundle } from './ca-bundle.js';
import { createFileStore } from './file-store.js';
import { serviceDnsNames } from './issue.js';
import { parseCertificates, remainingFraction } from './inspect.js';
import { checkMaterial, wrongNamesError, type CheckedMaterial, type RequiredNames } from './material.js';
import { applyStep, planRotation, type RotationPolicy, type RotationStep } from './rotation.js';
import { createSecretStore } from './secret-store.js';
import { StoreConflictError, type CertificateStore, type StoredMaterial } from './store.js';
import type { WebhookConfigNames } from './webhook-configs.js';

export interface CertificateManagerDeps {
  config: Config['certs'];
  logger: Logger;
  /** The process registry; the expiry gauge and rotation counter are registered on it. */
  metrics?: Registry;
  /** When given, a `certificates` check fails while the served certificate is expired. */
  readiness?: Readiness;
  /** When given and `config.secretName` is set, certificates live in that Secret; else in `config.dir`. */
  kube?: KubeClient;
  /** The two webhook configurations (from `readWebhookConfigNames(webhooksDir)`); with `kube`, their caBundle is kept in step. */
  webhookConfigNames?: WebhookConfigNames;
  /** The clock; every validity and renewal decision uses it. */
  now?: () => Date;
  /** Replaces the store chosen from the config (tests). */
  store?: CertificateStore;
  /** RSA key size of issued keys (tests use 1024 for speed; default 2048). */
  keyBits?: number;
  /** Whether to react to store changes at once (default true); the periodic check runs regardless. */
  watchStore?: boolean;
}

/** What is served now. */
export interface ServedCertificates {
  tls: TlsMaterial;
  /** PEM of every CA clients should trust (the webhooks' caBundle). */
  caBundle: string;
  servingNotAfter: Date;
  caNotAfter: Date;
  /** Fingerprint of the served certificate. */
  fingerprint: string;
}

export type RotateListener = (served: ServedCertificates) => void;

export interface CheckOutcome {
  /** Steps taken by this check (`issue`, `add-ca`, `switch-serving`, `drop-old-ca`, `renew-serving`). */
  steps: RotationStep['kind'][];
  /** Whether the served certificate changed. */
  reloaded: boolean;
  /** The error that kept the stored material from being used (the last good one is still served). */
  error?: PortcullisError;
}

export interface CertificateManager {
  /**
   * Loads the certificates (issuing them first in managed mode when none exist), starts watching
   * the store and the periodic re-check, and returns what to serve. Throws CERT_INVALID when no
   * usable certificate exists (bring-your-own mode, or a store that cannot be repaired).
   */
  start(): Promise<TlsMaterial>;
  /** What is served now; throws before start(). */
  current(): ServedCertificates;
  /** Calls `listener` after every change of the served certificate. Returns an unsubscribe function. */
  onRotate(listener: RotateListener): () => void;
  /** Swaps the TLS context of `app` (no restart) on every rotation. Returns an unsubscribe function. */
  attach(app: HttpServer): () => void;
  /** One reconcile pass: load, validate, rotate if due, keep the caBundle in step, reload. Never throws. */
  check(): Promise<CheckOutcome>;
  /** Stops the timer and the watch. Idempotent. */
  close(): Promise<void>;
}

const MAX_STEPS_PER_CHECK = 4;

function asPortcullisError(error: unknown): PortcullisError {
  return isPortcullisError(error) ? error : new PortcullisError('INTERNAL', `certificate check failed: ${describeError(error)}`, { cause: error });
}
const MAX_CONFLICT_RETRIES = 5;

function gauge(registry: Registry | undefined): Gauge<'kind'> | undefined {
  if (!registry) return undefined;
  const name = 'portcullis_certificate_expiry_timestamp_seconds';
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Gauge) return existing as Gauge<'kind'>;
  return new Gauge({ name, help: 'When the served certificate (kind="serving") and the CA that signed it (kind="ca") expire, as a Unix timestamp.', labelNames: ['kind'], registers: [registry] });
}

function counter(registry: Registry | undefined): Counter<'step' | 'result'> | undefined {
  if (!registry) return undefined;
  const name = 'portcullis_certificate_rotations_total';
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<'step' | 'result'>;
  return new Counter({ name, help: 'Certificate rotation steps taken, by step and result (ok, conflict, failed).', labelNames: ['step', 'result'], registers: [registry] });
}

/** The names a managed serving certificate carries, and the ones a bring-your-own certificate must carry. */
export function requiredNames(config: Config['certs'], local: boolean): { issue: RequiredNames; require: RequiredNames } {
  const issueDns = [...serviceDnsNames(config.service, config.namespace), ...config.dnsNames, ...(local ? ['localhost'] : [])];
  const issueIps = [...config.ipAddresses, ...(local ? ['127.0.0.1'] : [])];
  return {
    issue: { dnsNames: [...new Set(issueDns)], ipAddresses: [...new Set(issueIps)] },
    // What kube-apiserver dials (SVC.NS.svc) plus whatever was asked for explicitly.
    require: { dnsNames: [...new Set([`${config.service}.${config.namespace}.svc`, ...config.dnsNames])], ipAddresses: [...new Set(config.ipAddresses)] },
  };
}

/**
 * The certificate manager of the webhook (and of `up`'s other HTTPS servers). See docs/certificates.md.
 *
 * Managed mode: issues a CA and a serving certificate, stores them (Secret in a cluster, files
 * otherwise), rotates them with overlap, keeps the webhooks' caBundle in step and reloads the TLS
 * context. External mode (bring your own): only loads, watches, reloads and reports — never writes.
 */
export function createCertificateManager(deps: CertificateManagerDeps): CertificateManager {
  const { config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const managed = config.mode === 'managed';
  const useSecret = deps.kube !== undefined && config.secretName !== undefined;
  const store: CertificateStore =
    deps.store ??
    (useSecret && deps.kube && config.secretName
      ? createSecretStore({ kube: deps.kube, namespace: config.namespace, name: config.secretName, requireCaKey: managed, logger })
      : createFileStore(config.dir, { requireCaKey: managed }));
  const names = requiredNames(config, !useSecret);
  const policy: RotationPolicy = { renewBeforeFraction: config.renewBeforeFraction, overlapMs: config.overlapSeconds * 1000, required: names.issue };
  const settings = { caValidityDays: config.caValidityDays, servingValidityDays: config.servingValidityDays, names: names.issue, ...(deps.keyBits ? { keyBits: deps.keyBits } : {}) };
  const expiry = gauge(deps.metrics);
  const rotations = counter(deps.metrics);
  const listeners = new Set<RotateListener>();
  const log = logger.child({ component: 'certificates' });

  let served: ServedCertificates | undefined;
  let lastGood: StoredMaterial | undefined;
  let warnedNear: string | undefined;
  let brokenVersion: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopWatch: (() => void) | undefined;
  let running: Promise<CheckOutcome> | undefined;
  let again = false;
  let closed = false;

  function serve(checked: CheckedMaterial): boolean {
    const fingerprint = `${checked.serving.fingerprint256}|${checked.material.caBundle}`;
    if (served && served.fingerprint === fingerprint) return false;
    served = {
      tls: { cert: checked.material.cert, key: checked.material.key },
      caBundle: checked.material.caBundle,
      servingNotAfter: checked.serving.notAfter,
      caNotAfter: checked.servingIssuer.notAfter,
      fingerprint,
    };
    expiry?.set({ kind: 'serving' }, Math.floor(checked.serving.notAfter.getTime() / 1000));
    expiry?.set({ kind: 'ca' }, Math.floor(checked.servingIssuer.notAfter.getTime() / 1000));
    for (const listener of listeners) {
      try {
        listener(served);
      } catch (error) {
        log.error({ [F.err]: error }, 'certificate reload listener failed');
      }
    }
    log.info({ subject: checked.serving.subject, notAfter: checked.serving.notAfter.toISOString(), issuer: checked.servingIssuer.subject, store: store.description }, 'certificate loaded');
    return true;
  }

  function warnIfNear(checked: CheckedMaterial, at: Date): void {
    const fraction = remainingFraction(checked.serving, at);
    if (fraction >= config.renewBeforeFraction || warnedNear === checked.serving.fingerprint256) return;
    warnedNear = checked.serving.fingerprint256;
    log.warn(
      { notAfter: checked.serving.notAfter.toISOString(), store: store.description, mode: config.mode },
      managed ? 'certificate rotation is near' : 'certificate expires soon and is not managed by portcullis: renew it where it comes from',
    );
  }

  async function loadChecked(): Promise<{ stored: StoredMaterial; checked: CheckedMaterial } | undefined> {
    const stored = await store.load();
    if (!stored) return undefined;
    const checked = checkMaterial(stored.material, store.sources, names.require);
    if (!managed && checked.missing.length > 0) throw wrongNamesError(checked, store.sources);
    return { stored, checked };
  }

  async function syncCaBundle(caBundle: string): Promise<void> {
    if (!deps.kube || !deps.webhookConfigNames) return;
    if (managed) {
      const report = await injectCaBundle(deps.kube, deps.webhookConfigNames, caBundle);
      for (const [kind, outcome] of Object.entries(report)) {
        if (outcome === 'updated') log.info({ [F.webhook]: kind }, 'webhook caBundle updated');
        if (outcome === 'missing') log.debug({ [F.webhook]: kind }, 'webhook configuration not installed; caBundle not injected');
      }
      return;
    }
    const stale = await findStaleCaBundles(deps.kube, deps.webhookConfigNames, caBundle);
    if (stale.length > 0) log.warn({ webhooks: stale }, 'webhook caBundle does not match the certificate authority in use (bring-your-own mode never writes it)');
  }

  async function reconcile(): Promise<CheckOutcome> {
    const steps: RotationStep['kind'][] = [];
    let reloaded = false;
    let current: { stored: StoredMaterial; checked: CheckedMaterial } | undefined;
    try {
      current = await loadChecked();
    } catch (error) {
      if (!isPortcullisError(error) || error.code !== 'CERT_INVALID' || !managed) throw error;
      // Managed: the stored material is ours and broken. A half-finished write by another process
      // looks the same for a moment, so the last good copy is restored only when the same broken
      // version is seen twice; on a first start there is nothing to keep, so issue afresh.
      const version = await store.currentVersion();
      if (served && lastGood) {
        if (brokenVersion !== version) {
          brokenVersion = version;
          throw error;
        }
        log.error({ [F.err]: error, store: store.description }, 'stored certificates are invalid; restoring the last good ones');
        await store.save(lastGood.material, version);
      } else {
        log.error({ [F.err]: error, store: store.description }, 'stored certificates are invalid; issuing new ones');
        await store.save(applyStep({ kind: 'issue', reason: error.message }, undefined, now(), settings), version);
        steps.push('issue');
      }
      brokenVersion = undefined;
      current = await loadChecked();
    }
    if (managed) {
      for (let attempt = 0; steps.length < MAX_STEPS_PER_CHECK; ) {
        const at = now();
        const step = planRotation(current?.checked, at, policy);
        if (step.kind === 'none') break;
        const material = applyStep(step, current?.checked, at, settings);
        try {
          await store.save(material, current?.stored.version);
          rotations?.inc({ step: step.kind, result: 'ok' });
          steps.push(step.kind);
          log.info({ step: step.kind, [F.reason]: step.reason, store: store.description }, 'certificate rotation step');
        } catch (error) {
          if (!(error instanceof StoreConflictError) || attempt >= MAX_CONFLICT_RETRIES) {
            rotations?.inc({ step: step.kind, result: 'failed' });
            throw error;
          }
          // Another replica wrote first: read what it wrote and decide again (usually: adopt it).
          rotations?.inc({ step: step.kind, result: 'conflict' });
          log.info({ step: step.kind, store: store.description }, 'certificate store changed concurrently; re-reading');
          attempt += 1;
        }
        current = await loadChecked();
      }
    }
    if (!current) throw new PortcullisError('CERT_INVALID', `${store.description}: no certificates found (bring-your-own mode expects ${Object.values(store.sources).join(', ')})`);
    // Trust first, then use: the caBundle is published before a certificate it must verify is
    // served. When publishing fails (RBAC, API down), a certificate whose CA clients already trust
    // is still served; one signed by a CA not yet published waits for the next check.
    let publishError: unknown;
    try {
      await syncCaBundle(current.checked.material.caBundle);
    } catch (error) {
      publishError = error;
    }
    const issuer = current.checked.servingIssuer.fingerprint256;
    const trusted = !served || parseCertificates(served.caBundle, 'served caBundle').some((ca) => ca.fingerprint256 === issuer);
    if (publishError === undefined || trusted) reloaded = serve(current.checked);
    lastGood = current.stored;
    warnIfNear(current.checked, now());
    if (publishError !== undefined) return { steps, reloaded, error: asPortcullisError(publishError) };
    return { steps, reloaded };
  }

  async function check(): Promise<CheckOutcome> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      // A check asked for while one runs is folded into it: one more pass, outcomes merged.
      const steps: RotationStep['kind'][] = [];
      let reloaded = false;
      let error: PortcullisError | undefined;
      do {
        again = false;
        try {
          const outcome = await reconcile();
          steps.push(...outcome.steps);
          reloaded ||= outcome.reloaded;
          error = outcome.error;
        } catch (thrown) {
          error = asPortcullisError(thrown);
        }
        if (error) log.warn({ [F.err]: error, store: store.description, serving: served ? 'last good certificate' : 'none' }, 'certificate check failed; keeping the certificate in use');
      } while (again && !closed);
      return { steps, reloaded, ...(error ? { error } : {}) };
    })();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  }

  return {
    async start() {
      const outcome = await check();
      if (!served) throw outcome.error ?? new PortcullisError('CERT_INVALID', `${store.description}: no usable certificate`);
      deps.readiness?.register('certificates', () => {
        if (!served) return { ok: false, reason: 'no certificate loaded' };
        const at = now();
        if (at.getTime() > served.servingNotAfter.getTime()) return { ok: false, reason: `the serving certificate expired at ${served.servingNotAfter.toISOString()}` };
        return { ok: true, reason: `serving certificate valid until ${served.servingNotAfter.toISOString()}` };
      });
      if (deps.watchStore ?? true) stopWatch = store.watch(() => void check());
      timer = setInterval(() => void check(), config.checkIntervalSeconds * 1000);
      timer.unref();
      return served.tls;
    },
    current() {
      if (!served) throw new PortcullisError('INTERNAL', 'certificate manager not started');
      return served;
    },
    onRotate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    attach(app) {
      const listener: RotateListener = (next) => setTls(app, next.tls);
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    check,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      stopWatch?.();
      await running;
    },
  };
}
