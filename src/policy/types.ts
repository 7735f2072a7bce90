/**
 * The contract between the policy engine and its callers (webhook, background audit, CLI).
 * The engine is pure: callers gather facts (images, digests, verdicts, namespace labels) and the
 * engine returns results as data. Nothing here does I/O.
 */
import type { ImageReference } from './image-reference.js';

/** Harbor's severity scale, lowest first (Trivy's UPPERCASE values map one-to-one). */
export const SEVERITIES = ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** One vulnerability found in one package of an image. */
export interface Finding {
  /** CVE or advisory id (`CVE-2021-3711`). */
  id: string;
  package: string;
  installedVersion: string;
  /** Absent when no fixed version is known (the finding is "unfixed"). */
  fixedVersion?: string;
  severity: Severity;
  /** Trivy's status (fixed, affected, will_not_fix, end_of_life, …) when known. */
  status?: string;
  title?: string;
  links?: string[];
}

export const VERDICT_STATES = ['scanned', 'pending', 'unscanned', 'failed', 'unsupported', 'unavailable'] as const;
export type VerdictState = (typeof VERDICT_STATES)[number];

/** What is known about one image digest (DESIGN.md, "Verdicts"). */
export type Verdict =
  | {
      state: 'scanned';
      digest: string;
      /** ISO 8601 time the scan finished; compared against a policy's maximum scan age. */
      scannedAt: string;
      findings: Finding[];
      scanner?: string;
    }
  | {
      state: Exclude<VerdictState, 'scanned'>;
      digest?: string;
      /** Why there is no scan result: shown in messages (`scanner not ready: trivy not found on PATH`). */
      reason: string;
    };

/** One image of the submitted object, with what the caller found out about it. */
export interface ReviewedImage {
  /** JSON pointer to the image field in the submitted object (`/spec/template/spec/containers/0/image`). */
  pointer: string;
  container: string;
  containerType: 'containers' | 'initContainers' | 'ephemeralContainers';
  reference: ImageReference;
  /** The digest the reference resolved to (or the one it pins); absent when resolution failed. */
  digest?: string;
  /** Absent when no policy asked for a verdict of this image. */
  verdict?: Verdict;
}

export type Operation = 'CREATE' | 'UPDATE';

/**
 * All the engine knows of where the images run. Policies match by namespace, namespace labels and
 * image; nothing in an evaluation depends on the object's kind, name or operation, which is why
 * identical images in one namespace (the pods of one ReplicaSet) evaluate identically.
 */
export interface AdmissionContext {
  namespace: string;
  namespaceLabels: Readonly<Record<string, string>>;
}

export type PolicyAction = 'deny' | 'warn' | 'audit';
export type ResultStatus = 'pass' | 'fail' | 'warn' | 'skip' | 'error';

/** The outcome of one rule of one policy for one image (or for the object when `image` is absent). */
export interface PolicyResult {
  policy: string;
  rule: string;
  status: ResultStatus;
  /** One line, the text shown to the user for fail and warn. */
  message: string;
  action: PolicyAction;
  /** The image reference as written, and where it is. */
  image?: string;
  pointer?: string;
  digest?: string;
  /** Name of the PolicyException that turned a fail into a pass. */
  exception?: string;
}

export interface Evaluation {
  allowed: boolean;
  results: readonly PolicyResult[];
  /** The lines of the denial message: one per violation, then how to request an exception. */
  denyMessage?: string;
  /** Admission warnings, each under 120 characters. */
  warnings: string[];
  /**
   * Annotations for the audit log, from `audit`-mode policies: one key per policy, `audit-<policy>`,
   * without a prefix (kube-apiserver prefixes each key with the webhook's name).
   */
  auditAnnotations: Record<string, string>;
}

/** What the mutating webhook must do for pull secrets in one namespace. */
export interface PullSecretPlan {
  policy: string;
  /** Name of the Secret to reference from `imagePullSecrets`. */
  secretName: string;
  /** Secret to copy into the pod's namespace when the named Secret is missing there. */
  source?: { namespace: string; name: string };
  /** The registries (as found in the pod's images) that made this secret necessary. */
  registries: string[];
}
