import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { HarborScanOverview, HarborScanner, HarborVulnerabilityReport } from '../harbor/report.js';
import type { Readiness } from '../http/readiness.js';
import { F } from '../log/fields.js';
import type { Logger } from '../log/logger.js';
import type { Verdict } from '../policy/types.js';
import type { ScanPort } from '../registry/scan-port.js';
import { systemClock, type Clock } from './clock.js';
import { normalizeTrivyReport, reportFindings } from './normalize.js';
import { scanOverview } from './overview.js';
import { projectOf, scannability, type ArtifactEvent, type ArtifactEvents, type CredentialIssuer, type ProjectSettingsReader } from './ports.js';
import { runProcess as defaultRunProcess, type RunProcess } from './process.js';
import { ScanQueue, type EnqueueRequest, type EnqueueResult, type JobResult } from './queue.js';
import { ScannerStore, type ScanJob, type ScannerTables, type StoredOutcome } from './store.js';
import { TrivyRunner, type RegistryAuth } from './trivy.js';
import { describeState, TrivyStatus, type TrivyState } from './trivy-status.js';

/**
 * The scanner subsystem: durable queue + Trivy runner + reports, behind the registry's ScanPort,
 * the webhook's verdict lookups and the Harbor scanner-adapter API (src/scanner/routes.ts).
 */

/** A failed digest is scanned again when its verdict is asked for this long after the failure. */
export const RETRY_FAILED_AFTER_MS = 3600_000;

export const TRIVY_SCANNER: Omit<HarborScanner, 'version'> = { name: 'Trivy', vendor: 'Aqua Security' };

export interface ScannerDeps {
  config: Config['scanner'];
  logger: Logger;
  /** The shared database; the scanner's migrations (src/scanner/migrations.ts) must be applied. */
  db: Kysely<unknown>;
  metrics: Registry;
  readiness: Readiness;
  /** Base URL Trivy pulls from (`https://registry.example:5000`). */
  registryUrl: string;
  /** PEM of the CA that signed the registry's certificate; trusted by Trivy through SSL_CERT_FILE. */
  registryCa?: string;
  credentials: CredentialIssuer;
  events?: ArtifactEvents;
  projectSettings?: ProjectSettingsReader;
  clock?: Clock;
  /** Environment Trivy starts from (PATH, HOME, proxies); main passes process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  runProcess?: RunProcess;
  /** Stable name of this process for job ownership; the hostname by default. */
  instanceId?: string;
  /** Time Trivy gets past its own `--timeout` before its process tree is killed (default 5 s). */
  killGraceMs?: number;
}

export interface VerdictRequest {
  repository: string;
  digest: string;
  /** False on dry run and in the background audit: report what is known, never queue a scan. */
  triggerScan: boolean;
  mediaType?: string;
}

/** What `/api/v2.0/systeminfo` and the adapter metadata show about the scanner. */
export interface ScannerSystemInfo {
  name: string;
  vendor: string;
  ready: boolean;
  /** `trivy 0.50.1, vulnerability DB updated …` or `not ready: …`. */
  status: string;
  version?: string;
  dbUpdatedAt?: string;
  dbNextUpdate?: string;
  queue: Record<ScanJob['status'], number>;
}

/** A request to scan an artifact that may live in another registry (the adapter API's ScanRequest). */
export interface ExternalScanRequest {
  registryUrl: string;
  /** The `Authorization` header value Harbor sent for its registry (`Basic …` or `Bearer …`). */
  authorization?: string;
  repository: string;
  digest: string;
  tag?: string;
  mediaType?: string;
}

function hostOf(url: string): string {
  return new URL(url).host;
}

function parseAuthorization(value: string | undefined): RegistryAuth {
  if (!value) return { kind: 'none' };
  const [scheme = '', credentials = ''] = value.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return { kind: 'bearer', token: credentials };
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { kind: 'none' };
}

/** Most rescans queued at once after a vulnerability DB change; the rest are rescanned when asked for. */
const RESCAN_BATCH_LIMIT = 10_000;

export class Scanner implements ScanPort {
  readonly queue: ScanQueue;
  readonly status: TrivyStatus;
  readonly store: ScannerStore;
  readonly #deps: ScannerDeps;
  readonly #clock: Clock;
  readonly #runner: TrivyRunner;
  readonly #registryHost: string;
  /** Credentials for jobs of other registries (adapter requests): kept in memory, never stored. */
  readonly #externalAuth = new Map<string, RegistryAuth>();
  readonly #metrics: { jobs: Counter<'outcome'>; duration: Histogram; ready: Gauge };
  #unsubscribe: (() => void) | undefined;
  #caDir: string | undefined;
  readonly #finishedListeners = new Set<(job: { digest: string; repository: string; status: 'succeeded' | 'failed' }) => void>();

  constructor(deps: ScannerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#registryHost = hostOf(deps.registryUrl);
    this.store = new ScannerStore(deps.db as Kysely<ScannerTables>);
    const config = deps.config;
    this.#runner = new TrivyRunner(
      {
        trivyPath: config.trivyPath,
        cacheDir: config.cacheDir,
        timeoutSeconds: config.timeoutSeconds,
        insecure: config.insecure,
        extraArgs: config.extraArgs,
        env: deps.env ?? {},
        ...(deps.killGraceMs !== undefined ? { killGraceMs: deps.killGraceMs } : {}),
      },
      deps.runProcess ?? defaultRunProcess,
    );
    this.status = new TrivyStatus({
      runner: this.#runner,
      clock: this.#clock,
      logger: deps.logger,
      intervalMs: config.statusIntervalSeconds * 1000,
      autoDownload: !config.extraArgs.includes('--skip-db-update'),
    });
    this.queue = new ScanQueue({
      store: this.store,
      clock: this.#clock,
      logger: deps.logger,
      execute: (job, signal) => this.#execute(job, signal),
      canRun: () => this.status.state.ready,
      concurrency: config.concurrency,
      maxAttempts: config.maxAttempts,
      retryBackoffMs: config.retryBackoffSeconds * 1000,
      leaseMs: (config.timeoutSeconds + 60) * 1000,
      owner: deps.instanceId ?? hostname(),
      onSettled: (job, result) => this.#recordSettled(job, result),
    });
    this.#metrics = this.#defineMetrics(deps.metrics);
    this.status.onState((state) => {
      this.#metrics.ready.set(state.ready ? 1 : 0);
      if (state.ready) this.queue.pump();
    });
    this.status.onDbChange((previous, current) => {
      deps.logger.info({ previous, current }, 'trivy vulnerability database changed; queueing rescans of reports made with the old one');
      if (current !== undefined) void this.#rescanAll(current);
    });
    deps.readiness.register('trivy', () => {
      const state = this.status.state;
      return { ok: state.ready, reason: describeState(state) };
    });
  }

  #defineMetrics(registry: Registry) {
    const existing = registry.getSingleMetric('portcullis_scanner_jobs_total');
    if (existing) registry.removeSingleMetric('portcullis_scanner_jobs_total');
    for (const name of ['portcullis_scanner_scan_duration_seconds', 'portcullis_scanner_ready', 'portcullis_scanner_queue_jobs']) {
      if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
    }
    const store = this.store;
    new Gauge({
      name: 'portcullis_scanner_queue_jobs',
      help: 'Scan jobs by status',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const counts = await store.countByStatus();
        for (const [status, count] of Object.entries(counts)) this.set({ status }, count);
      },
    });
    return {
      jobs: new Counter({ name: 'portcullis_scanner_jobs_total', help: 'Scan runs by outcome', labelNames: ['outcome'], registers: [registry] }),
      duration: new Histogram({
        name: 'portcullis_scanner_scan_duration_seconds',
        help: 'Duration of successful Trivy scans',
        buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
        registers: [registry],
      }),
      ready: new Gauge({ name: 'portcullis_scanner_ready', help: '1 when Trivy and its database are ready', registers: [registry] }),
    };
  }

  /** Probes Trivy, reclaims jobs a crash left running, subscribes to pushes and starts working. */
  async start(): Promise<void> {
    if (this.#deps.registryCa) {
      this.#caDir = mkdtempSync(join(tmpdir(), 'portcullis-scanner-ca-'));
      const caFile = join(this.#caDir, 'ca-bundle.pem');
      // Go reads SSL_CERT_FILE instead of the system roots, so the bundle carries both.
      const system = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'].find((file) => existsSync(file));
      writeFileSync(caFile, `${this.#deps.registryCa.trim()}\n${system ? readFileSync(system, 'utf8') : ''}`, { mode: 0o600 });
      this.#runner.config.caFile = caFile;
    }
    await this.status.refresh();
    await this.queue.start();
    if (this.#deps.events) this.#unsubscribe = this.#deps.events.subscribe((event) => this.#onArtifactEvent(event));
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.status.close();
    await this.queue.close();
    if (this.#caDir) rmSync(this.#caDir, { recursive: true, force: true });
  }

  async #onArtifactEvent(event: ArtifactEvent): Promise<void> {
    if (event.type !== 'artifact.pushed') return;
    const settings = await this.#deps.projectSettings?.projectSettings(projectOf(event.repository));
    if (settings && !settings.autoScan) {
      this.#deps.logger.debug({ [F.repository]: event.repository, [F.digest]: event.digest }, 'auto_scan off; push not scanned');
      return;
    }
    const request: EnqueueRequest = { repository: event.repository, digest: event.digest, mediaType: event.mediaType, trigger: 'push' };
    const type = event.artifactType ?? event.configMediaType;
    if (type !== undefined) request.artifactType = type;
    if (event.tag !== undefined) request.tag = event.tag;
    await this.enqueue(request);
  }

  /** Queues a scan (or joins the queued/running one). */
  enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    return this.queue.enqueue(request);
  }

  /** Queues a scan of an artifact in the registry Harbor named (the adapter API). */
  async enqueueExternal(request: ExternalScanRequest): Promise<EnqueueResult> {
    const own = hostOf(request.registryUrl) === this.#registryHost;
    const enqueue: EnqueueRequest = {
      repository: request.repository,
      digest: request.digest,
      mediaType: request.mediaType ?? '',
      trigger: 'adapter',
    };
    if (request.tag !== undefined) enqueue.tag = request.tag;
    if (!own) enqueue.registryUrl = request.registryUrl;
    const result = await this.queue.enqueue(enqueue);
    if (!own && !result.joined) this.#externalAuth.set(result.job.id, parseAuthorization(request.authorization));
    return result;
  }

  async #execute(job: ScanJob, signal: AbortSignal): Promise<JobResult> {
    const now = () => this.#clock.now().toISOString();
    const startedAt = job.startedAt ?? now();
    const scannable = scannability({ mediaType: job.mediaType, ...(job.artifactType !== undefined ? { artifactType: job.artifactType } : {}) });
    if (!scannable.scannable) {
      await this.store.saveOutcome({ kind: 'unsupported', digest: job.digest, repository: job.repository, reason: scannable.reason, scannedAt: now(), startedAt, jobId: job.id });
      return { kind: 'done' };
    }
    let auth: RegistryAuth;
    let registryHost = this.#registryHost;
    if (job.registryUrl) {
      registryHost = hostOf(job.registryUrl);
      auth = this.#externalAuth.get(job.id) ?? { kind: 'none' };
    } else {
      try {
        const credential = await this.#deps.credentials.issueRobotCredential(projectOf(job.repository), ['pull'], this.#deps.config.timeoutSeconds + 60);
        auth = { kind: 'basic', username: credential.username, password: credential.password };
      } catch (error) {
        return { kind: 'transient', error: `no robot credential for project ${projectOf(job.repository)}: ${describeError(error)}` };
      }
    }
    const outcome = await this.#runner.scan({ registryHost, repository: job.repository, digest: job.digest, auth, signal });
    switch (outcome.kind) {
      case 'report': {
        const state = this.status.state;
        const version = state.ready ? state.version : 'unknown';
        const report = normalizeTrivyReport({
          trivy: outcome.report,
          artifact: {
            repository: job.repository,
            digest: job.digest,
            ...(job.tag !== undefined ? { tag: job.tag } : {}),
            ...(job.mediaType !== '' ? { mimeType: job.mediaType } : {}),
          },
          scanner: { ...TRIVY_SCANNER, version },
          generatedAt: now(),
        });
        const stored: StoredOutcome = { kind: 'report', digest: job.digest, repository: job.repository, report, scannedAt: report.generated_at, startedAt, trivyVersion: version, jobId: job.id };
        const dbUpdatedAt = this.status.dbUpdatedAt;
        if (dbUpdatedAt !== undefined) stored.dbUpdatedAt = dbUpdatedAt;
        await this.store.saveOutcome(stored);
        this.#metrics.duration.observe(outcome.durationMs / 1000);
        this.#externalAuth.delete(job.id);
        return { kind: 'done' };
      }
      case 'unsupported':
        await this.store.saveOutcome({ kind: 'unsupported', digest: job.digest, repository: job.repository, reason: outcome.reason, scannedAt: now(), startedAt, jobId: job.id });
        return { kind: 'done' };
      case 'not-ready':
        // Trivy or its DB vanished under us: find out now, so that the queue stops claiming.
        void this.status.refresh();
        return { kind: 'not-ready', error: outcome.error };
      default:
        return outcome;
    }
  }

  /**
   * Queues a rescan of every stored report made with another vulnerability DB (one job per digest;
   * the queue's concurrency limit paces them). Failures are logged: the lazy path (a verdict asked
   * for a stale digest) still rescans what this misses.
   */
  async #rescanAll(dbUpdatedAt: string): Promise<void> {
    try {
      const stale = await this.store.reportsScannedBefore(dbUpdatedAt, RESCAN_BATCH_LIMIT);
      for (const artifact of stale) await this.enqueue({ ...artifact, trigger: 'rescan' });
      this.#deps.logger.info({ count: stale.length }, 'rescans queued after a vulnerability database change');
    } catch (error) {
      this.#deps.logger.error({ err: error }, 'queueing rescans after a vulnerability database change failed');
    }
  }

  /**
   * Calls `listener` each time a scan job ends for good (succeeded, or failed after its last
   * attempt); not for a failure that will be retried. Returns the function that unsubscribes.
   * A listener that throws is logged and does not affect the queue or other listeners.
   */
  onScanFinished(listener: (job: { digest: string; repository: string; status: 'succeeded' | 'failed' }) => void): () => void {
    this.#finishedListeners.add(listener);
    return () => this.#finishedListeners.delete(listener);
  }

  #recordSettled(job: ScanJob, result: JobResult): void {
    const outcome = result.kind === 'done' ? 'succeeded' : job.status === 'queued' ? `retry_${result.kind}` : 'failed';
    this.#metrics.jobs.inc({ outcome });
    if (job.status === 'failed') this.#externalAuth.delete(job.id);
    if (job.status === 'queued') return;
    const finished = { digest: job.digest, repository: job.repository, status: result.kind === 'done' ? ('succeeded' as const) : ('failed' as const) };
    for (const listener of this.#finishedListeners) {
      try {
        listener(finished);
      } catch (error) {
        this.#deps.logger.error({ err: error, digest: job.digest }, 'scan finished listener failed');
      }
    }
  }

  // ScanPort ------------------------------------------------------------------------------------

  async overview(digest: string): Promise<HarborScanOverview | undefined> {
    const [outcome, latest] = await Promise.all([this.store.outcome(digest), this.store.latestJob(digest)]);
    return scanOverview(outcome, latest);
  }

  async report(digest: string): Promise<HarborVulnerabilityReport | undefined> {
    const outcome = await this.store.outcome(digest);
    return outcome?.kind === 'report' ? outcome.report : undefined;
  }

  async requestScan(artifact: { repository: string; digest: string; mediaType: string }): Promise<void> {
    await this.enqueue({ ...artifact, trigger: 'demand' });
  }

  // Verdicts ------------------------------------------------------------------------------------

  /** Whether a stored report should be refreshed: too old, or scanned with another Trivy DB. */
  isStale(outcome: Extract<StoredOutcome, { kind: 'report' }>): boolean {
    const ageMs = this.#clock.now().getTime() - Date.parse(outcome.scannedAt);
    if (ageMs > this.#deps.config.maxReportAgeHours * 3600_000) return true;
    const current = this.status.dbUpdatedAt;
    return current !== undefined && outcome.dbUpdatedAt !== undefined && current !== outcome.dbUpdatedAt;
  }

  /** The verdict for one digest (DESIGN.md, "Verdicts"); with `triggerScan`, unscanned and stale digests are queued. */
  async verdict(request: VerdictRequest): Promise<Verdict> {
    const { digest } = request;
    const [outcome, latest] = await Promise.all([this.store.outcome(digest), this.store.latestJob(digest)]);
    const state: TrivyState = this.status.state;
    const queue = async (trigger: EnqueueRequest['trigger']) => {
      if (request.triggerScan) await this.enqueue({ repository: request.repository, digest, mediaType: request.mediaType ?? '', trigger });
    };
    if (outcome?.kind === 'unsupported') return { state: 'unsupported', digest, reason: outcome.reason };
    if (outcome?.kind === 'report') {
      if (this.isStale(outcome) && state.ready && latest?.status !== 'queued' && latest?.status !== 'running') await queue('rescan');
      return { state: 'scanned', digest, scannedAt: outcome.scannedAt, findings: reportFindings(outcome.report), scanner: `${outcome.report.scanner.name} ${outcome.report.scanner.version}` };
    }
    if (!state.ready) {
      await queue('verdict');
      return { state: 'unavailable', digest, reason: `scanner not ready: ${state.reason}` };
    }
    if (latest?.status === 'queued') return { state: 'pending', digest, reason: latest.attempts > 0 ? `scan waiting to retry: ${latest.error ?? ''}`.trim() : 'scan queued' };
    if (latest?.status === 'running') return { state: 'pending', digest, reason: `scan running since ${latest.startedAt ?? 'now'}` };
    if (latest?.status === 'failed') {
      // A failure is final for its job, not forever: an hour later (registry outage over, robot
      // fixed) a verdict request tries again. Within the hour, admission does not hammer Trivy.
      const failedAt = Date.parse(latest.finishedAt ?? latest.createdAt);
      if (this.#clock.now().getTime() - failedAt >= RETRY_FAILED_AFTER_MS) await queue('rescan');
      return { state: 'failed', digest, reason: `scan failed: ${latest.error ?? 'unknown error'}` };
    }
    await queue('verdict');
    return { state: 'unscanned', digest, reason: request.triggerScan ? 'never scanned; a scan was queued' : 'never scanned' };
  }

  async systemInfo(): Promise<ScannerSystemInfo> {
    const state = this.status.state;
    const info: ScannerSystemInfo = { ...TRIVY_SCANNER, ready: state.ready, status: describeState(state), queue: await this.store.countByStatus() };
    if (state.ready) {
      info.version = state.version;
      if (state.db.updatedAt !== undefined) info.dbUpdatedAt = state.db.updatedAt;
      if (state.db.nextUpdate !== undefined) info.dbNextUpdate = state.db.nextUpdate;
    }
    return info;
  }
}
