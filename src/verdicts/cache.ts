import { LRUCache } from 'lru-cache';
import { describeError } from '../errors.js';
import { formatImageReference, repositoryName, type ImageReference } from '../policy/image-reference.js';
import type { Verdict } from '../policy/types.js';
import type { VerdictSource } from './source.js';

/**
 * The verdict cache in front of one VerdictSource (DESIGN.md, "Verdicts"; the hot path rules):
 * - verdicts are cached by digest in a bounded LRU with a TTL (`scanned` for `ttlMs`, the
 *   transient states `pending` / `unscanned` / `failed` / `unsupported` for `transientTtlMs`, so
 *   that a finished scan shows up quickly; `unavailable` is never cached);
 * - tag → digest resolutions are cached for `digestTtlMs` (short: tags move);
 * - concurrent lookups of the same key share one call to the source (in-flight de-duplication);
 *   the shared call is not tied to any one request, so a slow answer still warms the cache;
 * - every lookup is bounded by the caller's AbortSignal: when it fires first the caller gets an
 *   `unavailable` verdict at once, never a late answer.
 */
export interface VerdictCacheOptions {
  source: VerdictSource;
  max: number;
  ttlMs: number;
  transientTtlMs?: number;
  digestTtlMs?: number;
  /** Upper bound for one shared call to the source, whoever waits for it. */
  sourceTimeoutMs?: number;
  /** Milliseconds clock, for TTLs (lru-cache's own clock is performance.now). */
  now?: () => number;
}

export interface LookupOptions {
  signal: AbortSignal;
  triggerScan: boolean;
}

/** What one image amounts to after resolution and lookup. */
export interface ImageLookup {
  digest?: string;
  verdict: Verdict;
}

interface Timed<T> {
  value: T;
  expires: number;
}

export class VerdictCache {
  readonly #source: VerdictSource;
  readonly #verdicts: LRUCache<string, Timed<Verdict>>;
  readonly #digests: LRUCache<string, Timed<string | null>>;
  readonly #inflight = new Map<string, Promise<unknown>>();
  readonly #ttlMs: number;
  readonly #transientTtlMs: number;
  readonly #digestTtlMs: number;
  readonly #sourceTimeoutMs: number;
  readonly #now: () => number;

  /** Changes whenever an entry is added, replaced or removed (see `version`); evictions only happen on additions. */
  #version = 0;

  constructor(options: VerdictCacheOptions) {
    this.#source = options.source;
    this.#verdicts = new LRUCache({ max: options.max });
    this.#digests = new LRUCache({ max: options.max });
    this.#ttlMs = options.ttlMs;
    this.#transientTtlMs = options.transientTtlMs ?? Math.min(options.ttlMs, 5_000);
    this.#digestTtlMs = options.digestTtlMs ?? Math.min(options.ttlMs, 30_000);
    this.#sourceTimeoutMs = options.sourceTimeoutMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  get sourceName(): string {
    return this.#source.name;
  }

  /**
   * A number that changes whenever any entry is added, replaced, evicted, forgotten or cleared:
   * while it and the clock stay inside `freshUntil` of what peekEntry returned, peek would return
   * the same answers. Lets a caller remember what it derived from cached verdicts.
   */
  get version(): number {
    return this.#version;
  }

  /** True while nothing changed since `version` was read and the clock is before `freshUntil`. */
  unchangedSince(version: number, freshUntil: number): boolean {
    return version === this.#version && this.#now() < freshUntil;
  }

  /** Number of cached verdicts (for metrics and tests). */
  get size(): number {
    return this.#verdicts.size;
  }

  /**
   * The digest `reference` designates: its own when pinned, else the source's answer for the tag.
   * Resolves to undefined when the source does not know the tag; rejects with the source's error
   * or, when `signal` fires first, with a deadline error.
   */
  async resolveDigest(reference: ImageReference, options: LookupOptions): Promise<string | undefined> {
    if (reference.digest !== undefined) return reference.digest;
    const key = `${repositoryName(reference)}:${reference.tag ?? 'latest'}`;
    const cached = this.#fresh(this.#digests.get(key));
    if (cached !== undefined) return cached.value ?? undefined;
    const shared = this.#shared(`digest ${key}`, (signal) =>
      this.#source.resolveDigest(reference, { signal, triggerScan: options.triggerScan }).then((digest) => {
        this.#digests.set(key, { value: digest ?? null, expires: this.#now() + this.#digestTtlMs });
        this.#version += 1;
        return digest;
      }),
    );
    return raceDeadline(shared as Promise<string | undefined>, options.signal);
  }

  /** The verdict for `digest`; rejects like resolveDigest. */
  async verdict(reference: ImageReference, digest: string, options: LookupOptions): Promise<Verdict> {
    const cached = this.#fresh(this.#verdicts.get(digest));
    if (cached !== undefined) return cached.value;
    const shared = this.#shared(`verdict ${digest} ${options.triggerScan}`, (signal) =>
      this.#source.verdict(reference, digest, { signal, triggerScan: options.triggerScan }).then((verdict) => {
        if (verdict.state !== 'unavailable') {
          const ttl = verdict.state === 'scanned' ? this.#ttlMs : this.#transientTtlMs;
          this.#verdicts.set(digest, { value: verdict, expires: this.#now() + ttl });
          this.#version += 1;
        }
        return verdict;
      }),
    );
    return raceDeadline(shared as Promise<Verdict>, options.signal);
  }

  /**
   * Resolves and looks up one image, turning every failure into a verdict: a missed deadline or
   * an unreachable source is `unavailable`, an unknown tag is `unscanned`. Never rejects.
   */
  async lookup(reference: ImageReference, options: LookupOptions): Promise<ImageLookup> {
    let digest: string | undefined;
    try {
      digest = await this.resolveDigest(reference, options);
    } catch (error) {
      return { verdict: { state: 'unavailable', reason: this.#reason('resolve', reference, error) } };
    }
    if (digest === undefined) {
      return { verdict: { state: 'unscanned', reason: `not found in ${this.#source.name}` } };
    }
    try {
      return { digest, verdict: await this.verdict(reference, digest, options) };
    } catch (error) {
      return { digest, verdict: { state: 'unavailable', digest, reason: this.#reason('verdict', reference, error) } };
    }
  }

  /**
   * What the cache already knows about `reference`, without calling the source: the digest (its
   * own, or a fresh tag resolution) and a fresh verdict for it. Undefined when either is missing
   * or expired. The hot path uses it to skip promises when the cache is warm.
   */
  peek(reference: ImageReference): ImageLookup | undefined {
    const entry = this.peekEntry(reference);
    return entry === undefined ? undefined : { digest: entry.digest, verdict: entry.verdict };
  }

  /** Like peek, with the time (this cache's clock) until which the answer stays fresh. */
  peekEntry(reference: ImageReference): { digest: string; verdict: Verdict; freshUntil: number } | undefined {
    let digest = reference.digest;
    let freshUntil = Number.POSITIVE_INFINITY;
    if (digest === undefined) {
      const resolved = this.#fresh(this.#digests.get(`${repositoryName(reference)}:${reference.tag ?? 'latest'}`));
      if (resolved === undefined || resolved.value === null) return undefined;
      digest = resolved.value;
      freshUntil = resolved.expires;
    }
    const verdict = this.#fresh(this.#verdicts.get(digest));
    return verdict === undefined ? undefined : { digest, verdict: verdict.value, freshUntil: Math.min(freshUntil, verdict.expires) };
  }

  /** Forgets the verdict of one digest (its scan just finished), so the next lookup asks the source. */
  forget(digest: string): void {
    this.#verdicts.delete(digest);
    this.#version += 1;
  }

  /** Forgets everything (tests; a changed source). */
  clear(): void {
    this.#verdicts.clear();
    this.#digests.clear();
    this.#version += 1;
  }

  #reason(what: 'resolve' | 'verdict', reference: ImageReference, error: unknown): string {
    if (error instanceof DeadlineError) return `verdict source ${this.#source.name} did not answer before the deadline`;
    const action = what === 'resolve' ? 'resolving' : 'looking up';
    return `verdict source ${this.#source.name} failed ${action} ${reference.original}: ${describeError(error)}`;
  }

  #fresh<T>(entry: Timed<T> | undefined): Timed<T> | undefined {
    return entry !== undefined && entry.expires > this.#now() ? entry : undefined;
  }

  #shared<T>(key: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const existing = this.#inflight.get(key);
    if (existing) return existing as Promise<T>;
    const promise = call(AbortSignal.timeout(this.#sourceTimeoutMs)).finally(() => this.#inflight.delete(key));
    // Waiters may all have given up; the shared call must not become an unhandled rejection.
    promise.catch(() => undefined);
    this.#inflight.set(key, promise);
    return promise;
  }
}

/** Rejection used when the caller's deadline passes before the source answered. */
export class DeadlineError extends Error {
  constructor() {
    super('deadline passed');
    this.name = 'DeadlineError';
  }
}

/**
 * Settles with `promise`, or rejects with `deadlineError()` (a DeadlineError unless given) as soon
 * as `signal` fires, whichever is first. `promise` itself is not cancelled.
 */
export function raceDeadline<T>(promise: Promise<T>, signal: AbortSignal, deadlineError: () => Error = () => new DeadlineError()): Promise<T> {
  if (signal.aborted) return Promise.reject(deadlineError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(deadlineError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Per-request memo over the cache: each distinct image reference is resolved and looked up once
 * per admission request, however many containers use it.
 */
export class RequestLookups {
  readonly #cache: VerdictCache;
  readonly #options: LookupOptions;
  readonly #digests = new Map<string, Promise<string | undefined>>();
  readonly #lookups = new Map<string, Promise<ImageLookup>>();

  constructor(cache: VerdictCache, options: LookupOptions) {
    this.#cache = cache;
    this.#options = options;
  }

  /** The digest only (for digest pinning without a verdict); undefined when unknown or late. */
  digest(reference: ImageReference): Promise<string | undefined> {
    const key = formatImageReference(reference);
    let pending = this.#digests.get(key);
    if (!pending) {
      pending = this.#cache.resolveDigest(reference, this.#options).catch(() => undefined);
      this.#digests.set(key, pending);
    }
    return pending;
  }

  /** Digest and verdict from the cache alone (see VerdictCache.peek). */
  peek(reference: ImageReference): ImageLookup | undefined {
    return this.#cache.peek(reference);
  }

  /** Digest and verdict; never rejects. */
  lookup(reference: ImageReference): Promise<ImageLookup> {
    const key = formatImageReference(reference);
    let pending = this.#lookups.get(key);
    if (!pending) {
      pending = this.#cache.lookup(reference, this.#options);
      this.#lookups.set(key, pending);
    }
    return pending;
  }
}
