import type { ImageReference } from '../policy/image-reference.js';
import type { Verdict } from '../policy/types.js';

export interface VerdictOptions {
  /** Aborted when the request's deadline passes; a source must stop waiting and reject then. */
  signal: AbortSignal;
  /** False on dry run and in the background audit: report what is known, never start a scan. */
  triggerScan: boolean;
}

/**
 * Where verdicts come from: the built-in registry + scanner, any Harbor v2.0 API, or on-demand
 * scans. Implementations do I/O; the cache (src/verdicts/cache.ts) wraps one source and adds
 * de-duplication, TTL and the deadline.
 */
export interface VerdictSource {
  /** Short name for logs and metrics (`builtin`, `harbor`). */
  readonly name: string;
  /**
   * Resolves a tag reference to the digest the registry serves for it. Returns undefined when the
   * repository or tag does not exist there. Throws (or rejects on abort) when the source cannot be
   * reached; callers turn that into an `unavailable` verdict.
   */
  resolveDigest(reference: ImageReference, options: VerdictOptions): Promise<string | undefined>;
  /**
   * The verdict for one digest of `reference`'s repository. Absence of a scan is a verdict
   * (`unscanned`, `pending`, …), not an error. Throws only when the source cannot answer.
   * With `triggerScan`, an `unscanned` or stale digest is queued for scanning.
   */
  verdict(reference: ImageReference, digest: string, options: VerdictOptions): Promise<Verdict>;
}
