import { formatImageReference, parseImageReference, repositoryName, type ImageReference } from '../policy/image-reference.js';
import type { Verdict } from '../policy/types.js';
import type { VerdictOptions, VerdictSource } from './source.js';

/**
 * A verdict source with a fixed answer per image, for the offline CLIs (`review`, `policy test`):
 * each entry is an image reference and the verdict its Trivy report amounts to. An image without
 * an entry is unknown here, which the cache turns into `unscanned`.
 */
export class StaticVerdictSource implements VerdictSource {
  readonly name: string;
  readonly #entries: { reference: ImageReference; verdict: Verdict }[] = [];

  constructor(entries: { image: string; verdict: Verdict }[] = [], name = 'the given Trivy reports') {
    this.name = name;
    for (const entry of entries) this.add(entry.image, entry.verdict);
  }

  /** Adds (or replaces) the verdict of `image`. Throws ImageReferenceError for a malformed reference. */
  add(image: string, verdict: Verdict): void {
    const reference = parseImageReference(image);
    const key = formatImageReference(reference);
    const index = this.#entries.findIndex((entry) => formatImageReference(entry.reference) === key);
    if (index >= 0) this.#entries.splice(index, 1);
    this.#entries.push({ reference, verdict });
  }

  /**
   * The entry for `reference`: the same normalised reference, else the same repository with the
   * same tag or the same digest (`app:1.2` matches a report given for `app:1.2@sha256:…`).
   */
  find(reference: ImageReference): Verdict | undefined {
    const key = formatImageReference(reference);
    const exact = this.#entries.find((entry) => formatImageReference(entry.reference) === key);
    if (exact) return exact.verdict;
    const repository = repositoryName(reference);
    return this.#entries.find(
      (entry) =>
        repositoryName(entry.reference) === repository &&
        ((reference.tag !== undefined && entry.reference.tag === reference.tag) ||
          (reference.digest !== undefined && entry.reference.digest === reference.digest) ||
          (reference.digest !== undefined && entry.verdict.digest === reference.digest)),
    )?.verdict;
  }

  async resolveDigest(reference: ImageReference, _options: VerdictOptions): Promise<string | undefined> {
    const verdict = this.find(reference);
    if (verdict === undefined) return undefined;
    return reference.digest ?? verdict.digest;
  }

  async verdict(reference: ImageReference, digest: string, _options: VerdictOptions): Promise<Verdict> {
    const verdict = this.find(reference);
    if (verdict === undefined) return { state: 'unscanned', digest, reason: `no report for ${reference.original}` };
    return verdict.state === 'scanned' ? { ...verdict, digest } : verdict;
  }
}
