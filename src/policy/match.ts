/**
 * Matchers compiled once when a policy set loads: globs (picomatch), namespace label selectors,
 * and the candidate spellings of an image that image globs are tried against.
 */
import picomatch from 'picomatch';
import { effectiveTag, formatImageReference, repositoryName } from './image-reference.js';
import type { LabelSelector, MatchSpec } from './documents.js';
import type { AdmissionContext, ReviewedImage } from './types.js';

export type StringMatcher = (candidate: string) => boolean;

const NEVER: StringMatcher = () => false;
const ALWAYS: StringMatcher = () => true;

/**
 * A matcher for a list of globs (`*` within one path segment, `**` across, `?`, `[abc]`, `{a,b}`).
 * Patterns without glob characters compare exactly. An empty list matches nothing.
 */
export function compileGlobs(patterns: readonly string[]): StringMatcher {
  if (patterns.length === 0) return NEVER;
  if (patterns.includes('*') || patterns.includes('**')) return ALWAYS;
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const pattern of patterns) {
    if (picomatch.scan(pattern).isGlob) globs.push(pattern);
    else exact.add(pattern);
  }
  const glob = globs.length > 0 ? picomatch(globs, { dot: true }) : undefined;
  return (candidate) => exact.has(candidate) || (glob !== undefined && glob(candidate));
}

/** The spellings an image glob is tried against: as written, canonical, repository, repository:tag, digest forms. */
export function imageCandidates(image: ReviewedImage): string[] {
  const reference = image.reference;
  const repository = repositoryName(reference);
  const candidates = [reference.original, formatImageReference(reference), repository];
  const tag = effectiveTag(reference);
  if (tag !== undefined) candidates.push(`${repository}:${tag}`);
  for (const digest of new Set([image.digest, reference.digest])) {
    if (digest === undefined) continue;
    candidates.push(digest, `${repository}@${digest}`);
  }
  return [...new Set(candidates)];
}

export type ImageMatcher = (image: ReviewedImage) => boolean;

export function compileImageGlobs(patterns: readonly string[]): ImageMatcher {
  const matches = compileGlobs(patterns);
  // `*` (the default scope) and empty lists (the default exclusions) need no spellings at all.
  if (matches === ALWAYS) return () => true;
  if (matches === NEVER) return () => false;
  return (image) => imageCandidates(image).some(matches);
}

export type SelectorMatcher = (labels: Readonly<Record<string, string>>) => boolean;

/** Kubernetes label-selector semantics: every matchLabels pair and every expression must hold. */
export function compileSelector(selector: LabelSelector | undefined): SelectorMatcher {
  if (!selector) return () => true;
  const labels = Object.entries(selector.matchLabels ?? {});
  const expressions = (selector.matchExpressions ?? []).map((expression) => ({ ...expression, values: new Set(expression.values ?? []) }));
  return (actual) =>
    labels.every(([key, value]) => actual[key] === value) &&
    expressions.every((expression) => {
      const has = Object.hasOwn(actual, expression.key);
      const value = actual[expression.key];
      switch (expression.operator) {
        case 'In':
          return has && value !== undefined && expression.values.has(value);
        case 'NotIn':
          return !has || value === undefined || !expression.values.has(value);
        case 'Exists':
          return has;
        case 'DoesNotExist':
          return !has;
      }
    });
}

export interface CompiledMatch {
  /** Whether the namespace (by name and labels) is in scope. */
  namespace(context: AdmissionContext): boolean;
  /** Whether the image is in scope. */
  image(image: ReviewedImage): boolean;
}

/** A `match` block; absent lists mean "everything", exclusions win over inclusions. */
export function compileMatch(spec: MatchSpec | undefined): CompiledMatch {
  const namespaces = compileGlobs(spec?.namespaces ?? ['*']);
  const excludedNamespaces = compileGlobs(spec?.excludeNamespaces ?? []);
  const selector = compileSelector(spec?.namespaceSelector);
  const images = compileImageGlobs(spec?.images ?? ['*']);
  const excludedImages = compileImageGlobs(spec?.excludeImages ?? []);
  return {
    namespace: (context) => namespaces(context.namespace) && !excludedNamespaces(context.namespace) && selector(context.namespaceLabels),
    image: (image) => images(image) && !excludedImages(image),
  };
}
