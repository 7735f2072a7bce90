import { describeError } from '../errors.js';
import type { RunProcess } from './process.js';
import { parseTrivyReport, parseTrivyVersion, TrivyOutputError, type TrivyReport, type TrivyVersionInfo } from './trivy-report.js';

/**
 * The Trivy command line, the way Trivy reads its inputs: flags for what to do, environment for
 * secrets (`TRIVY_USERNAME`/`TRIVY_PASSWORD`, or `TRIVY_REGISTRY_TOKEN` for a bearer token) so that
 * no credential ever appears in `ps`, and `SSL_CERT_FILE` to trust the registry's CA.
 */
export interface TrivyConfig {
  /** `trivy` (looked up on PATH) or a path. */
  trivyPath: string;
  cacheDir?: string;
  timeoutSeconds: number;
  insecure: boolean;
  extraArgs: readonly string[];
  /** Environment the child starts from (PATH, HOME, proxies); TRIVY_* secrets are added per scan. */
  env: Readonly<Record<string, string | undefined>>;
  /** PEM bundle file to trust (the registry's CA plus the system roots); sets SSL_CERT_FILE. */
  caFile?: string;
  /** Time Trivy gets past its own `--timeout` before its process tree is killed (default 5 s). */
  killGraceMs?: number;
}

export type RegistryAuth = { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string } | { kind: 'none' };

export interface ScanTarget {
  /** `host[:port]` of the registry as Trivy should address it. */
  registryHost: string;
  repository: string;
  digest: string;
  auth: RegistryAuth;
  signal?: AbortSignal;
}

export type ScanOutcome =
  | { kind: 'report'; report: TrivyReport; durationMs: number }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'transient'; error: string }
  | { kind: 'permanent'; error: string }
  | { kind: 'not-ready'; error: string };

export type VersionProbe = { ok: true; info: TrivyVersionInfo } | { ok: false; reason: string };

/** Kill margin over Trivy's own `--timeout`, so Trivy can report its timeout before we kill it. */
const KILL_GRACE_MS = 5_000;

/** The argument list of a scan (exported for tests and for the docs). */
export function scanArgs(config: Pick<TrivyConfig, 'cacheDir' | 'timeoutSeconds' | 'insecure' | 'extraArgs'>, target: Pick<ScanTarget, 'registryHost' | 'repository' | 'digest'>): string[] {
  const args = ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', `${config.timeoutSeconds}s`];
  if (config.cacheDir) args.push('--cache-dir', config.cacheDir);
  if (config.insecure) args.push('--insecure');
  args.push(...config.extraArgs, `${target.registryHost}/${target.repository}@${target.digest}`);
  return args;
}

function authEnv(auth: RegistryAuth): Record<string, string> {
  switch (auth.kind) {
    case 'basic':
      return { TRIVY_USERNAME: auth.username, TRIVY_PASSWORD: auth.password };
    case 'bearer':
      return { TRIVY_REGISTRY_TOKEN: auth.token };
    case 'none':
      return {};
  }
}

function childEnv(config: TrivyConfig, extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  // Credentials come from the job, never from the scanner's own environment.
  for (const [key, value] of Object.entries(config.env)) {
    if (!/^TRIVY_(USERNAME|PASSWORD|REGISTRY_TOKEN)$/.test(key)) env[key] = value;
  }
  if (config.caFile) env.SSL_CERT_FILE = config.caFile;
  return { ...env, ...extra };
}

/** The lines of Trivy's stderr worth showing: the FATAL/ERROR line and what follows, trimmed. */
export function errorSummary(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  const fatal = lines.findIndex((line) => /\b(FATAL|ERROR)\b|error:/i.test(line));
  const picked = (fatal >= 0 ? lines.slice(fatal) : lines.slice(-3)).join(' ');
  return picked.length > 600 ? `${picked.slice(0, 600)}…` : picked || 'no error output';
}

const NOT_IMAGE = /unsupported MediaType|unsupported media ?type|not an? (container )?image|no child with platform|unknown image config/i;
const NO_DB = /--skip-db-update cannot be specified on the first run|first run cannot skip|failed to download vulnerability DB|vulnerability DB (is )?not found|DB error: failed to (open|load)/i;
const PERMANENT = /\b(UNAUTHORIZED|DENIED|MANIFEST_UNKNOWN|NAME_UNKNOWN|BLOB_UNKNOWN)\b|401 Unauthorized|403 Forbidden|404 Not Found|unknown flag|invalid argument/i;
const TRANSIENT =
  /\b(500|502|503|504)\b|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout|TOOMANYREQUESTS|429 Too Many Requests|connection refused|connection reset|i\/o timeout|TLS handshake timeout|no such host|unexpected EOF|temporary failure/i;

/** Sorts a failed Trivy run into what the queue should do with it. */
export function classifyFailure(stderr: string): Exclude<ScanOutcome, { kind: 'report' }> {
  const summary = errorSummary(stderr);
  if (NOT_IMAGE.test(stderr)) return { kind: 'unsupported', reason: `not a container image Trivy can scan: ${summary}` };
  if (NO_DB.test(stderr)) return { kind: 'not-ready', error: `vulnerability database unavailable: ${summary}` };
  if (PERMANENT.test(stderr)) return { kind: 'permanent', error: summary };
  if (TRANSIENT.test(stderr)) return { kind: 'transient', error: summary };
  return { kind: 'permanent', error: summary };
}

export class TrivyRunner {
  readonly #config: TrivyConfig;
  readonly #run: RunProcess;

  constructor(config: TrivyConfig, run: RunProcess) {
    this.#config = config;
    this.#run = run;
  }

  get config(): TrivyConfig {
    return this.#config;
  }

  /** `trivy --version --format json`; never throws: a missing binary or bad output is a reason. */
  async version(): Promise<VersionProbe> {
    const args = ['--version', '--format', 'json'];
    if (this.#config.cacheDir) args.push('--cache-dir', this.#config.cacheDir);
    try {
      const result = await this.#run({ command: this.#config.trivyPath, args, env: childEnv(this.#config, {}), timeoutMs: 30_000 });
      if (result.timedOut) return { ok: false, reason: `${this.#config.trivyPath} --version did not answer within 30s` };
      if (result.exitCode !== 0) return { ok: false, reason: `${this.#config.trivyPath} --version exited with ${result.exitCode ?? result.signal}: ${errorSummary(result.stderr)}` };
      return { ok: true, info: parseTrivyVersion(result.stdout) };
    } catch (error) {
      return { ok: false, reason: spawnFailure(this.#config.trivyPath, error) };
    }
  }

  /** Downloads the vulnerability database into the cache directory (`--download-db-only`). */
  async downloadDb(signal?: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }> {
    const args = ['image', '--download-db-only', '--quiet', '--timeout', `${this.#config.timeoutSeconds}s`];
    if (this.#config.cacheDir) args.push('--cache-dir', this.#config.cacheDir);
    if (this.#config.insecure) args.push('--insecure');
    try {
      const request = { command: this.#config.trivyPath, args, env: childEnv(this.#config, {}), timeoutMs: this.#config.timeoutSeconds * 1000 + (this.#config.killGraceMs ?? KILL_GRACE_MS) };
      const result = await this.#run(signal ? { ...request, signal } : request);
      if (result.exitCode === 0) return { ok: true };
      return { ok: false, reason: result.timedOut ? 'the download did not finish in time' : errorSummary(result.stderr) };
    } catch (error) {
      return { ok: false, reason: spawnFailure(this.#config.trivyPath, error) };
    }
  }

  /** Scans one image by digest. Never throws; every failure is classified. */
  async scan(target: ScanTarget): Promise<ScanOutcome> {
    const started = Date.now();
    const request = {
      command: this.#config.trivyPath,
      args: scanArgs(this.#config, target),
      env: childEnv(this.#config, authEnv(target.auth)),
      timeoutMs: this.#config.timeoutSeconds * 1000 + (this.#config.killGraceMs ?? KILL_GRACE_MS),
    };
    let result;
    try {
      result = await this.#run(target.signal ? { ...request, signal: target.signal } : request);
    } catch (error) {
      return { kind: 'not-ready', error: spawnFailure(this.#config.trivyPath, error) };
    }
    if (result.timedOut) {
      return { kind: 'permanent', error: `trivy did not finish within ${this.#config.timeoutSeconds}s; its process tree was killed` };
    }
    if (result.exitCode === null) return { kind: 'transient', error: `trivy was killed by ${result.signal ?? 'a signal'}` };
    if (result.exitCode !== 0) return classifyFailure(result.stderr);
    try {
      return { kind: 'report', report: parseTrivyReport(result.stdout), durationMs: Date.now() - started };
    } catch (error) {
      if (error instanceof TrivyOutputError) return { kind: 'permanent', error: error.message };
      throw error;
    }
  }
}

function spawnFailure(command: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `trivy not found: "${command}" is not on PATH and is not a file (install Trivy or set scanner.trivyPath)`;
  if (code === 'EACCES') return `trivy not executable: "${command}" (check its permissions)`;
  return `trivy could not be started: ${describeError(error)}`;
}
