import { describeError } from '../errors.js';
import { F } from '../log/fields.js';
import { planPullSecrets, shouldPinDigest } from '../policy/evaluate.js';
import type { PolicyResult, PullSecretPlan, ReviewedImage } from '../policy/types.js';
import { RequestLookups, raceDeadline } from '../verdicts/cache.js';
import type { Deadline } from './deadline.js';
import { childPointer, describePatch, resolvePointer, type PatchOperation } from './json-patch.js';
import { pullSecretNames } from './pod-spec.js';
import type { AdmissionReviewRequest } from './review.js';
import { admissionContext, reviewImages, selectSubject, type Subject } from './subject.js';
import { namespaceLabels, skippedOutcome, type Outcome, type PipelineDeps } from './validate.js';

/** Annotation keeping the references as written before digest pinning: JSON `{container: image}`. */
export const ORIGINAL_IMAGES_ANNOTATION = 'portcullis.io/original-images';

/**
 * The mutating pipeline: filter → extract → pull secrets (patch + Secret copy, not on dry run)
 * → digest pinning (Pods only) → JSONPatch. Every step is idempotent: a re-invocation on the
 * patched object yields no further operations. Never throws for a well-formed review; problems
 * (a Secret that could not be copied, a digest that could not be resolved) become warnings,
 * because the validating webhook is where enforcement happens.
 */
export async function mutateReview(deps: PipelineDeps, review: AdmissionReviewRequest, deadline: Deadline): Promise<Outcome> {
  const selection = selectSubject(review, deps.excluded);
  if ('skip' in selection) return skippedOutcome(selection.skip);
  const { subject } = selection;
  const set = deps.policies.current();
  if (!set) return { ...skippedOutcome('no valid policy set is loaded'), subject };
  const { images } = reviewImages(subject.containers);
  const context = admissionContext(subject, await namespaceLabels(deps, subject.namespace, deadline));
  const warnings: string[] = [];
  const results: PolicyResult[] = [];
  const operations: PatchOperation[] = [];

  const plans = planPullSecrets(set, context, images);
  operations.push(...pullSecretOperations(subject, plans));
  for (const plan of plans) {
    results.push({ policy: plan.policy, rule: 'pullSecret', status: 'pass', action: 'audit', message: `imagePullSecrets ${plan.secretName} for ${plan.registries.join(', ')}` });
  }
  if (!subject.dryRun) warnings.push(...(await ensureSecrets(deps, subject, plans, deadline)));

  if (subject.kind === 'Pod') {
    const pinning = images.filter((image) => shouldPinDigest(set, context, image));
    if (pinning.length > 0) {
      const pinned = await pinDigests(deps, subject, pinning, deadline);
      operations.push(...pinned.operations);
      warnings.push(...pinned.warnings);
    }
  }

  return {
    answer: { allowed: true, patch: operations, warnings },
    subject,
    images,
    results,
    mode: 'none',
    patch: describePatch(operations),
  };
}

/** `add` operations for the secrets the pod does not reference yet (none on re-invocation). */
export function pullSecretOperations(subject: Subject, plans: readonly PullSecretPlan[]): PatchOperation[] {
  const present = new Set(pullSecretNames(subject.location));
  const missing = [...new Set(plans.map((plan) => plan.secretName))].filter((name) => !present.has(name));
  if (missing.length === 0) return [];
  const listPointer = childPointer(subject.location.specPointer, 'imagePullSecrets');
  if (!Array.isArray(subject.location.spec.imagePullSecrets)) {
    return [{ op: 'add', path: listPointer, value: missing.map((name) => ({ name })) }];
  }
  return missing.map((name) => ({ op: 'add', path: `${listPointer}/-`, value: { name } }));
}

async function ensureSecrets(deps: PipelineDeps, subject: Subject, plans: readonly PullSecretPlan[], deadline: Deadline): Promise<string[]> {
  const kube = deps.kube;
  const copies = plans.filter((plan) => plan.source !== undefined);
  if (copies.length === 0) return [];
  if (!kube) {
    deps.logger.debug({ [F.namespace]: subject.namespace }, 'no Kubernetes access; pull secrets are not copied');
    return [];
  }
  const warnings = await Promise.all(
    copies.map(async (plan) => {
      const source = plan.source as { namespace: string; name: string };
      try {
        const result = await raceDeadline(kube.ensureSecret(subject.namespace, plan.secretName, source), deadline.signal);
        if (result === 'copied') deps.logger.info({ [F.namespace]: subject.namespace, [F.name]: plan.secretName, [F.policy]: plan.policy }, 'pull secret copied');
        return undefined;
      } catch (error) {
        deps.logger.warn({ [F.namespace]: subject.namespace, [F.name]: plan.secretName, [F.err]: describeError(error) }, 'pull secret not copied');
        return `pull secret ${plan.secretName} could not be copied into ${subject.namespace}; pulls may fail`.slice(0, 119);
      }
    }),
  );
  return warnings.filter((warning): warning is string => warning !== undefined);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The image as written with its tag replaced by `@digest` (`reg/app:1.2` → `reg/app@sha256:…`). */
export function pinnedImage(image: ReviewedImage, digest: string): string {
  const original = image.reference.original.trim();
  const tag = image.reference.tag;
  const name = tag !== undefined && original.endsWith(`:${tag}`) ? original.slice(0, -(tag.length + 1)) : original;
  return `${name}@${digest}`;
}

async function pinDigests(
  deps: PipelineDeps,
  subject: Subject,
  images: readonly ReviewedImage[],
  deadline: Deadline,
): Promise<{ operations: PatchOperation[]; warnings: string[] }> {
  if (!deps.verdicts) return { operations: [], warnings: ['digest pinning skipped: no verdict source is configured'] };
  const lookups = new RequestLookups(deps.verdicts, { signal: deadline.signal, triggerScan: false });
  const operations: PatchOperation[] = [];
  const warnings: string[] = [];
  const originals: Record<string, string> = {};
  for (const image of images) {
    const digest = await lookups.digest(image.reference);
    if (digest === undefined) {
      warnings.push(`image ${image.reference.original} not pinned: its digest could not be resolved`.slice(0, 119));
      continue;
    }
    operations.push({ op: 'replace', path: image.pointer, value: pinnedImage(image, digest) });
    originals[image.container] = image.reference.original;
  }
  if (operations.length === 0 || subject.location.metadataPointer === undefined) return { operations, warnings };
  const metadataPointer = subject.location.metadataPointer;
  // Read the metadata the patch writes to (at metadataPointer), checked: the object is whatever was submitted.
  const metadata = resolvePointer(subject.review.request.object, metadataPointer);
  const annotations = isRecord(metadata) && isRecord(metadata.annotations) ? metadata.annotations : undefined;
  const previous = parseOriginals(annotations?.[ORIGINAL_IMAGES_ANNOTATION]);
  const value = JSON.stringify({ ...previous, ...originals });
  if (!isRecord(metadata)) {
    operations.push({ op: 'add', path: metadataPointer, value: { annotations: { [ORIGINAL_IMAGES_ANNOTATION]: value } } });
  } else if (annotations === undefined) {
    operations.push({ op: 'add', path: childPointer(metadataPointer, 'annotations'), value: { [ORIGINAL_IMAGES_ANNOTATION]: value } });
  } else {
    operations.push({ op: 'add', path: childPointer(metadataPointer, 'annotations', ORIGINAL_IMAGES_ANNOTATION), value });
  }
  return { operations, warnings };
}

function parseOriginals(value: unknown): Record<string, string> {
  if (typeof value !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    // Someone edited the annotation by hand; it is rewritten from what is pinned now.
    return {};
  }
}
