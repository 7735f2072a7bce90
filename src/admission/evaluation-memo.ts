import { LRUCache } from 'lru-cache';
import type { PolicySet } from '../policy/compile.js';
import type { AdmissionContext, Evaluation, ReviewedImage, Verdict } from '../policy/types.js';

/**
 * Remembers evaluations of identical inputs for a moment. Evaluation is pure, so the same policy
 * set revision, context and images with the very same verdict objects (the verdict cache hands
 * out the same object while its entry lives) give the same answer — except for what depends on
 * the clock (exception expiry, maximum scan age), which is why entries live only `ttlMs`
 * (default 1 s). Controllers and `kubectl apply` loops send many identical reviews; this keeps
 * the policy engine off the hot path for them.
 */
export class EvaluationMemo {
  readonly #entries: LRUCache<string, { evaluation: Evaluation; expires: number }>;
  readonly #verdictIds = new WeakMap<Verdict, number>();
  readonly #ttlMs: number;
  #nextId = 1;

  constructor(options: { max?: number; ttlMs?: number } = {}) {
    this.#entries = new LRUCache({ max: options.max ?? 1000 });
    this.#ttlMs = options.ttlMs ?? 1000;
  }

  /** The remembered evaluation for `key`, if still fresh at `now`. */
  get(key: string, now: Date): Evaluation | undefined {
    const hit = this.#entries.get(key);
    return hit !== undefined && hit.expires > now.getTime() ? hit.evaluation : undefined;
  }

  /** Remembers `evaluation` for `key` until `now + ttlMs`. */
  set(key: string, evaluation: Evaluation, now: Date): void {
    this.#entries.set(key, { evaluation, expires: now.getTime() + this.#ttlMs });
  }

  /**
   * The key of an evaluation: policy set revision, context, and per image its place, reference,
   * digest and the identity of the verdict the cache holds for it (`verdicts[i]`).
   */
  key(set: PolicySet, context: AdmissionContext, images: readonly ReviewedImage[], verdicts: readonly (Verdict | undefined)[]): string {
    let key = `${set.revision}\u0000${context.namespace}\u0000${context.kind}\u0000${context.name}\u0000${context.operation}\u0000`;
    for (const label of Object.keys(context.namespaceLabels).sort()) key += `${label}=${context.namespaceLabels[label]}\u0001`;
    images.forEach((image, index) => {
      key += `\u0000${image.pointer}\u0001${image.container}\u0001${image.reference.original}\u0001${this.#verdictId(verdicts[index])}`;
    });
    return key;
  }

  #verdictId(verdict: Verdict | undefined): number {
    if (verdict === undefined) return 0;
    let id = this.#verdictIds.get(verdict);
    if (id === undefined) {
      id = this.#nextId++;
      this.#verdictIds.set(verdict, id);
    }
    return id;
  }
}
