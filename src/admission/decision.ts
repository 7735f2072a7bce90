import type { PolicyResult } from '../policy/types.js';

/**
 * One admission decision as the audit record keeps it (DESIGN.md, "Audit"). Built by the
 * validate and mutate pipelines after answering, and handed to a DecisionSink.
 */
export interface DecisionRecord {
  /** ISO 8601 time the request arrived. */
  time: string;
  /** AdmissionReview request uid. */
  uid: string;
  webhook: 'validate' | 'mutate';
  user: { username: string; groups: string[] };
  operation: string;
  namespace: string;
  kind: string;
  name: string;
  images: { image: string; pointer: string; digest?: string }[];
  results: readonly PolicyResult[];
  /** What kube-apiserver was told. */
  decision: 'allow' | 'deny';
  /**
   * The strongest action among failing results: `deny` (refused), `warn` (admitted with
   * warnings), `audit` (admitted, recorded only), `none` (nothing failed).
   */
  mode: 'deny' | 'warn' | 'audit' | 'none';
  warnings: string[];
  /** For mutate: what the JSONPatch did, one line per operation (`add /spec/imagePullSecrets/-`). */
  patch: string[];
  dryRun: boolean;
  durationMs: number;
}

/**
 * Receives decisions off the request path. `record` must return at once and never throw: a slow
 * or failed store must not slow or fail admission (the audit writer buffers, batches, and counts
 * what it had to drop).
 */
export interface DecisionSink {
  record(decision: DecisionRecord): void;
}

/** A sink that keeps nothing; used when no audit store is configured (offline review, tests). */
export const discardDecisions: DecisionSink = { record: () => undefined };

let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * `date.toISOString()`, computed once a second: the text up to the seconds is remembered and the
 * milliseconds appended. Every decision record carries its time, and the full formatting was a
 * visible cost per admission request.
 */
export function isoTime(date: Date): string {
  const ms = date.getTime();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    if (Number.isNaN(second)) return date.toISOString(); // throws RangeError, as toISOString does
    isoSecond = second;
    isoPrefix = date.toISOString().slice(0, -4); // "…T03:04:05."
  }
  const millis = ms - second * 1000;
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}
