import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Clock } from './clock.js';
import type { TrivyRunner } from './trivy.js';

/**
 * Whether Trivy can scan right now, from `trivy --version --format json`: the binary answers and
 * its vulnerability database is present. The most common real-world failure is the database not
 * being there yet (a fresh install, an air-gapped cluster), so when it is missing and updates are
 * allowed, the database is downloaded once per probe; with `--skip-db-update` among the extra
 * arguments (air-gapped), it never is, and the reason says how to provide it.
 */
export type TrivyState =
  | { ready: true; version: string; db: { version?: number; updatedAt?: string; nextUpdate?: string } }
  | { ready: false; reason: string };

export interface TrivyStatusOptions {
  runner: TrivyRunner;
  clock: Clock;
  logger: Logger;
  /** How often to probe again (a DB update shows up this way). */
  intervalMs: number;
  /** Try `--download-db-only` when the DB is missing. */
  autoDownload: boolean;
}

export type DbChangeListener = (previous: string | undefined, current: string | undefined) => void;

export class TrivyStatus {
  readonly #options: TrivyStatusOptions;
  #state: TrivyState = { ready: false, reason: 'trivy has not been probed yet' };
  #cancel: (() => void) | undefined;
  #probing: Promise<TrivyState> | undefined;
  #download: Promise<void> | undefined;
  readonly #abort = new AbortController();
  readonly #stateListeners = new Set<(state: TrivyState) => void>();
  readonly #dbListeners = new Set<DbChangeListener>();
  #closed = false;

  constructor(options: TrivyStatusOptions) {
    this.#options = options;
  }

  get state(): TrivyState {
    return this.#state;
  }

  /** The current vulnerability DB's `UpdatedAt`, when ready. */
  get dbUpdatedAt(): string | undefined {
    return this.#state.ready ? this.#state.db.updatedAt : undefined;
  }

  /** Called whenever a probe finishes (ready or not). */
  onState(listener: (state: TrivyState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Called when the DB's `UpdatedAt` differs from the previous ready probe's. */
  onDbChange(listener: DbChangeListener): () => void {
    this.#dbListeners.add(listener);
    return () => this.#dbListeners.delete(listener);
  }

  /** Probes now (concurrent callers share one probe) and reschedules the next probe. */
  refresh(): Promise<TrivyState> {
    this.#probing ??= this.#probe().finally(() => {
      this.#probing = undefined;
      this.#schedule();
    });
    return this.#probing;
  }

  async #probe(): Promise<TrivyState> {
    const { runner } = this.#options;
    const probe = await runner.version();
    if (probe.ok && !probe.info.VulnerabilityDB && this.#options.autoDownload) {
      // Downloading takes minutes: do it in the background, so that starting never waits for it.
      this.#download ??= this.#downloadDb().finally(() => {
        this.#download = undefined;
      });
      return this.#setState({ ready: false, reason: `downloading the vulnerability database into ${runner.config.cacheDir ?? "Trivy's default cache"}` });
    }
    if (!probe.ok) return this.#setState({ ready: false, reason: probe.reason });
    const db = probe.info.VulnerabilityDB;
    if (!db) {
      return this.#setState({
        ready: false,
        reason: `vulnerability database not found in ${runner.config.cacheDir ?? "Trivy's default cache"}: run \`trivy image --download-db-only --cache-dir ${runner.config.cacheDir ?? '<dir>'}\` or copy an offline database there (docs/scanner.md)`,
      });
    }
    const state: TrivyState = { ready: true, version: probe.info.Version, db: {} };
    if (db.Version !== undefined) state.db.version = db.Version;
    if (db.UpdatedAt !== undefined) state.db.updatedAt = db.UpdatedAt;
    if (db.NextUpdate !== undefined) state.db.nextUpdate = db.NextUpdate;
    return this.#setState(state);
  }

  async #downloadDb(): Promise<void> {
    const { runner, logger } = this.#options;
    logger.info({ [F.path]: runner.config.cacheDir }, 'trivy vulnerability database missing, downloading');
    const download = await runner.downloadDb(this.#abort.signal);
    if (this.#closed) return;
    if (!download.ok) {
      this.#setState({
        ready: false,
        reason: `vulnerability database not found in ${runner.config.cacheDir ?? "Trivy's default cache"} and the download failed: ${download.reason}`,
      });
      return;
    }
    const probe = await runner.version();
    if (!probe.ok) this.#setState({ ready: false, reason: probe.reason });
    else if (probe.info.VulnerabilityDB) await this.refresh();
    else this.#setState({ ready: false, reason: `trivy --download-db-only succeeded but the database is still not in ${runner.config.cacheDir ?? "Trivy's default cache"}` });
  }

  /** Resolves when no probe and no database download is in progress (for tests and tools). */
  async settled(): Promise<TrivyState> {
    while (this.#probing || this.#download) await (this.#probing ?? this.#download);
    return this.#state;
  }

  #setState(state: TrivyState): TrivyState {
    const previous = this.#state;
    this.#state = state;
    const wasReady = previous.ready;
    if (state.ready !== wasReady || (!state.ready && !previous.ready && previous.reason !== state.reason)) {
      if (state.ready) this.#options.logger.info({ version: state.version, dbUpdatedAt: state.db.updatedAt }, 'trivy ready');
      else this.#options.logger.warn({ [F.reason]: state.reason }, 'trivy not ready');
    }
    if (previous.ready && state.ready && previous.db.updatedAt !== state.db.updatedAt) {
      for (const listener of this.#dbListeners) listener(previous.db.updatedAt, state.db.updatedAt);
    }
    for (const listener of this.#stateListeners) listener(state);
    return state;
  }

  #schedule(): void {
    this.#cancel?.();
    if (this.#closed) return;
    this.#cancel = this.#options.clock.setTimer(() => void this.refresh(), this.#options.intervalMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancel?.();
    this.#abort.abort();
    await this.#probing;
    await this.#download;
  }
}

/** The line `/readyz` and systeminfo show. */
export function describeState(state: TrivyState): string {
  if (!state.ready) return `not ready: ${state.reason}`;
  return `trivy ${state.version}, vulnerability DB ${state.db.updatedAt ? `updated ${state.db.updatedAt}` : 'present'}`;
}
