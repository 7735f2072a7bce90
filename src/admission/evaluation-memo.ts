import type { PolicySet } from '../policy/compile.js';
import type { ImageReference } from '../policy/image-reference.js';
import type { AdmissionContext, Evaluation, ReviewedImage } from '../policy/types.js';

/** What the verdict cache tells about its own changes (src/verdicts/cache.ts). */
export interface CacheVersion {
  readonly version: number;
  unchangedSince(version: number, freshUntil: number): boolean;
}

/** A remembered evaluation and the digests its images had. */
export interface Remembered {
  evaluation: Evaluation;
  /** Per image (in order), the digest it was evaluated with. */
  digests: readonly (string | undefined)[];
}

interface Entry extends Remembered {
  /** Request clock: the entry was made at `created` and serves until `expires` (exclusive). */
  created: number;
  expires: number;
  /** The verdict cache's version and freshness when the entry was made. */
  cacheVersion: number;
  freshUntil: number;
}

/**
 * Remembers evaluations of identical inputs for a moment. Evaluation is pure, so the same policy
 * set revision, context and images give the same answer as long as the verdict cache still holds
 * the very verdicts that were used — which the cache's version says in one comparison — and the
 * clock has not reached the next instant at which the engine's answer could change (an exception
 * or allowlist entry expiring, a scan growing too old: the caller passes it as `until`). Entries
 * live at most `ttlMs` (default 1 s), and never serve a request older than themselves (a clock
 * stepped back). Controllers and `kubectl apply` loops send many identical reviews; this keeps the
 * policy engine and the per-image cache lookups off the hot path for them.
 *
 * The entries are a plain Map in insertion order, bounded by `max`: when full, the oldest entry
 * goes. An entry lives a second at most, so recency tracking (an LRU) would buy nothing here, and
 * its bookkeeping on every hit was a visible part of the warm path.
 */
export class EvaluationMemo {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #ttlMs: number;
  /**
   * Short ids for what the key names, so that the key stays short (it is built and hashed on
   * every request): parsed references are shared objects (src/admission/subject.ts) and pointers
   * reused strings (src/admission/pod-spec.ts). Ids are never reused, so a key made with an id can
   * never name anything else; the pointer table is emptied when large (its keys then just miss).
   */
  readonly #referenceIds = new WeakMap<ImageReference, number>();
  readonly #pointerIds = new Map<string, number>();
  #nextId = 1;

  constructor(options: { max?: number; ttlMs?: number } = {}) {
    this.#max = Math.max(1, options.max ?? 1000);
    this.#ttlMs = options.ttlMs ?? 1000;
  }

  /** The remembered evaluation for `key`, if still fresh at `now` and the cache has not changed. */
  get(key: string, now: Date, cache: CacheVersion): Remembered | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const at = now.getTime();
    if (at >= entry.expires) {
      this.#entries.delete(key);
      return undefined;
    }
    if (at < entry.created || !cache.unchangedSince(entry.cacheVersion, entry.freshUntil)) return undefined;
    return entry;
  }

  /**
   * Remembers `evaluation` for `key` from `now` until `now + ttlMs` or `validity.until` (request
   * clock, exclusive), whichever is first, and while the cache stays at `validity.cacheVersion`
   * with its own clock before `validity.freshUntil` (the earliest expiry of the entries used).
   */
  set(key: string, remembered: Remembered, now: Date, validity: { cacheVersion: number; freshUntil: number; until: number }): void {
    const at = now.getTime();
    const expires = Math.min(at + this.#ttlMs, validity.until);
    if (expires <= at) return;
    // Re-inserted, so that a refreshed entry counts as the newest.
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, { evaluation: remembered.evaluation, digests: remembered.digests, created: at, expires, cacheVersion: validity.cacheVersion, freshUntil: validity.freshUntil });
  }

  /**
   * The key of an evaluation: what the engine reads. The policy set revision, the context
   * (namespace and its labels), and per image its place (a JSON pointer, which also tells a Pod
   * from a pod template) and its reference. Container names are not read by the engine.
   */
  key(set: PolicySet, context: AdmissionContext, images: readonly ReviewedImage[]): string {
    let key = `${set.revision}\u0000${context.namespace}\u0000${labelsKey(context.namespaceLabels)}`;
    for (const image of images) key += `\u0000${this.#pointerId(image.pointer)}.${this.#referenceId(image.reference)}`;
    return key;
  }

  #referenceId(reference: ImageReference): number {
    let id = this.#referenceIds.get(reference);
    if (id === undefined) {
      id = this.#nextId++;
      this.#referenceIds.set(reference, id);
    }
    return id;
  }

  #pointerId(pointer: string): number {
    let id = this.#pointerIds.get(pointer);
    if (id === undefined) {
      if (this.#pointerIds.size >= 4096) this.#pointerIds.clear();
      id = this.#nextId++;
      this.#pointerIds.set(pointer, id);
    }
    return id;
  }
}

/** `k=v` pairs in key order, separated by U+0001; empty for no labels (the common case, no sort). */
function labelsKey(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels);
  if (names.length === 0) return '';
  if (names.length > 1) names.sort();
  let key = '';
  for (const name of names) key += `${name}=${labels[name]}\u0001`;
  return key;
}
