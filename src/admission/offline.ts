import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { defaultConfig } from '../config/schema.js';
import { PortcullisError, describeError } from '../errors.js';
import { silentLogger } from '../log/logger.js';
import type { PolicySet } from '../policy/compile.js';
import { ImageReferenceError, parseImageReference } from '../policy/image-reference.js';
import type { PolicyResult } from '../policy/types.js';
import { VerdictCache } from '../verdicts/cache.js';
import { StaticVerdictSource } from '../verdicts/static-source.js';
import { parseTrivyReportText, trivyVerdict } from '../verdicts/trivy-report.js';
import { noDeadline } from './deadline.js';
import type { AdmissionReviewRequest } from './review.js';
import { namespaceExcluder } from './subject.js';
import { validateReview } from './validate.js';

/**
 * The webhook's validating pipeline run offline, for `portcullis review` and `portcullis policy
 * test`: manifests instead of AdmissionReviews, Trivy reports instead of a verdict source. The
 * same code path (validateReview) decides, so the answer is the one the cluster would give.
 */
export interface ManifestResource {
  file: string;
  /** 1-based line of the document in the file. */
  line: number;
  object: Record<string, unknown>;
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

export interface OfflineDecision {
  resource: ManifestResource;
  /** `skip` for objects the webhook does not evaluate (no pod spec, excluded namespace). */
  decision: 'allow' | 'deny' | 'skip';
  /** The denial message, as kube-apiserver would show it. */
  message?: string;
  warnings: string[];
  auditAnnotations: Record<string, string>;
  results: readonly PolicyResult[];
  skipped?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function malformed(message: string, detail?: unknown): PortcullisError {
  return new PortcullisError('REQUEST_MALFORMED', message, detail === undefined ? {} : { detail });
}

/**
 * Reads multi-document YAML (or JSON) manifests; `kind: List` documents are expanded. Empty
 * documents are ignored. Throws REQUEST_MALFORMED naming file and line for unreadable files,
 * YAML errors and documents that are not Kubernetes objects.
 */
export function readManifests(files: readonly string[], options: { cwd?: string; defaultNamespace?: string } = {}): ManifestResource[] {
  const resources: ManifestResource[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(resolve(options.cwd ?? '.', file), 'utf8');
    } catch (error) {
      throw malformed(`${file}: cannot read: ${describeError(error)}`, { file });
    }
    const lineCounter = new LineCounter();
    const documents = parseAllDocuments(text, { lineCounter });
    for (const document of Array.isArray(documents) ? documents : [documents]) {
      const line = lineCounter.linePos(document.contents?.range?.[0] ?? document.range[0]).line;
      const yamlError = document.errors[0];
      if (yamlError) {
        const at = yamlError.linePos?.[0];
        throw malformed(`${file}:${at?.line ?? line}:${at?.col ?? 1}: not valid YAML: ${yamlError.message.split('\n')[0] ?? ''}`, { file });
      }
      const value: unknown = document.toJS();
      if (value === null || value === undefined) continue;
      const items = isRecord(value) && value.kind === 'List' && Array.isArray(value.items) ? (value.items as unknown[]) : [value];
      for (const item of items) resources.push(toResource(item, file, line, options.defaultNamespace ?? 'default'));
    }
  }
  return resources;
}

function toResource(value: unknown, file: string, line: number, defaultNamespace: string): ManifestResource {
  if (!isRecord(value)) throw malformed(`${file}:${line}: expected a Kubernetes object, got ${Array.isArray(value) ? 'a list' : typeof value}`, { file, line });
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== 'string' || apiVersion === '') throw malformed(`${file}:${line} /apiVersion: is required`, { file, line });
  if (typeof kind !== 'string' || kind === '') throw malformed(`${file}:${line} /kind: is required`, { file, line });
  const meta = isRecord(metadata) ? metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? meta.generateName : '';
  if (name === '') throw malformed(`${file}:${line} /metadata/name: is required for ${kind}`, { file, line });
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : defaultNamespace;
  return { file, line, object: value, apiVersion, kind, name, namespace };
}

/**
 * Parses `IMAGE=TRIVY_JSON` pairs into a verdict source. Throws REQUEST_MALFORMED for a pair
 * without `=`, a malformed image reference, an unreadable file or a report that is not Trivy JSON.
 */
export function reportSource(pairs: readonly string[], cwd = '.'): StaticVerdictSource {
  const source = new StaticVerdictSource();
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0 || at === pair.length - 1) throw malformed(`--report ${JSON.stringify(pair)}: expected IMAGE=TRIVY_JSON`);
    source.add(...reportEntry(pair.slice(0, at), pair.slice(at + 1), cwd));
  }
  return source;
}

/** One image and the verdict its Trivy report file amounts to. */
export function reportEntry(image: string, file: string, cwd = '.'): [string, ReturnType<typeof trivyVerdict>] {
  let reference;
  try {
    reference = parseImageReference(image);
  } catch (error) {
    if (error instanceof ImageReferenceError) throw malformed(`report image ${error.message}`);
    throw error;
  }
  let text: string;
  try {
    text = readFileSync(resolve(cwd, file), 'utf8');
  } catch (error) {
    throw malformed(`${file}: cannot read: ${describeError(error)}`, { file });
  }
  const report = parseTrivyReportText(text, file);
  return [image, trivyVerdict(report, reference.digest === undefined ? {} : { digest: reference.digest })];
}

function groupVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The AdmissionReview kube-apiserver would send for creating `resource` (as a dry run). */
export function reviewFor(resource: ManifestResource, uid: string): AdmissionReviewRequest {
  const { group, version } = groupVersion(resource.apiVersion);
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group, version, kind: resource.kind },
      resource: { group, version, resource: `${resource.kind.toLowerCase()}s` },
      name: resource.name,
      namespace: resource.namespace,
      operation: 'CREATE',
      userInfo: { username: 'portcullis-review' },
      object: resource.object,
      dryRun: true,
    },
  };
}

export interface OfflineOptions {
  set: PolicySet;
  source: StaticVerdictSource;
  now: Date;
  /** Namespaces the webhook never evaluates (the configuration's default when absent). */
  excludedNamespaces?: readonly string[];
}

/** Evaluates each resource exactly as the validating webhook would. */
export async function reviewResources(resources: readonly ManifestResource[], options: OfflineOptions): Promise<OfflineDecision[]> {
  const deps = {
    policies: { current: () => options.set },
    verdicts: new VerdictCache({ source: options.source, max: 10_000, ttlMs: 24 * 3600 * 1000, now: () => options.now.getTime() }),
    kube: undefined,
    excluded: namespaceExcluder(options.excludedNamespaces ?? defaultConfig('.').webhook.excludedNamespaces),
    now: () => options.now,
    logger: silentLogger(),
  };
  const decisions: OfflineDecision[] = [];
  for (const [index, resource] of resources.entries()) {
    const outcome = await validateReview(deps, reviewFor(resource, `review-${index + 1}`), noDeadline());
    const decision: OfflineDecision = {
      resource,
      decision: outcome.skipped !== undefined ? 'skip' : outcome.answer.allowed ? 'allow' : 'deny',
      warnings: outcome.answer.warnings ?? [],
      auditAnnotations: outcome.answer.auditAnnotations ?? {},
      results: outcome.results,
    };
    if (outcome.answer.message !== undefined) decision.message = outcome.answer.message;
    if (outcome.skipped !== undefined) decision.skipped = outcome.skipped;
    decisions.push(decision);
  }
  return decisions;
}

/** `Deployment/web` (namespace shown by callers that need it). */
export function resourceName(resource: Pick<ManifestResource, 'kind' | 'name'>): string {
  return `${resource.kind}/${resource.name}`;
}
