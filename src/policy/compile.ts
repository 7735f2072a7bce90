/**
 * A PolicySet is the compiled, immutable form of one directory of validated policy documents:
 * globs and selectors are compiled once here, defaults are filled in, timestamps are parsed. The
 * store swaps whole sets atomically; evaluation only reads them.
 */
import { createHash } from 'node:crypto';
import type {
  ImageRuleName,
  PolicyDocument,
  SourcedDocument,
  StateAction,
  StateKey,
} from './documents.js';
import { compileGlobs, compileImageGlobs, compileMatch, type CompiledMatch, type ImageMatcher, type StringMatcher } from './match.js';
import { expiryInstant, parseDuration } from './time.js';
import type { PolicyAction, Severity } from './types.js';

/** What a non-`scanned` verdict (or a stale scan) means when a policy does not say. */
export const DEFAULT_STATE_ACTIONS: Readonly<Record<StateKey, StateAction>> = Object.freeze({
  pending: 'warn',
  unscanned: 'warn',
  failed: 'warn',
  unsupported: 'allow',
  unavailable: 'warn',
  stale: 'warn',
});

export interface CompiledAllowlistEntry {
  readonly id: string;
  readonly reason: string;
  readonly expires: string;
  /** ms since epoch; the entry applies while `now < expiresAt`. */
  readonly expiresAt: number;
}

export interface CompiledVulnerabilityRule {
  readonly maxSeverity?: Severity;
  readonly maxCount: Readonly<Partial<Record<Severity, number>>>;
  readonly ignoreUnfixed: boolean;
  readonly allowlist: readonly CompiledAllowlistEntry[];
  readonly maxScanAge?: string;
  readonly maxScanAgeMs?: number;
  readonly verdictStates: Readonly<Record<StateKey, StateAction>>;
}

export interface CompiledPatterns {
  readonly patterns: readonly string[];
  readonly matches: StringMatcher;
}

export interface CompiledImagePolicy {
  readonly kind: 'ImagePolicy';
  readonly name: string;
  readonly file: string;
  readonly action: PolicyAction;
  readonly match: CompiledMatch;
  readonly vulnerabilities?: CompiledVulnerabilityRule;
  readonly allowedRegistries?: CompiledPatterns;
  readonly disallowedTags?: CompiledPatterns;
  readonly requireDigest: boolean;
  readonly pinDigest: boolean;
}

export interface CompiledPullSecretPolicy {
  readonly kind: 'PullSecretPolicy';
  readonly name: string;
  readonly file: string;
  readonly match: CompiledMatch;
  readonly registries: CompiledPatterns;
  readonly secretName: string;
  readonly source?: { readonly namespace: string; readonly name: string };
}

export interface CompiledException {
  readonly kind: 'PolicyException';
  readonly name: string;
  readonly file: string;
  readonly policies: StringMatcher;
  /** Absent: every rule of the matched policies. */
  readonly rules?: ReadonlySet<ImageRuleName>;
  readonly namespaces: StringMatcher;
  readonly images: ImageMatcher;
  /** Absent: the whole result is excepted; present: only findings with these ids are. */
  readonly cves?: ReadonlySet<string>;
  readonly reason: string;
  readonly expires: string;
  /** ms since epoch; the exception applies while `now < expiresAt`. */
  readonly expiresAt: number;
}

export interface PolicySet {
  /** In file order, then document order. */
  readonly imagePolicies: readonly CompiledImagePolicy[];
  readonly pullSecretPolicies: readonly CompiledPullSecretPolicy[];
  readonly exceptions: readonly CompiledException[];
  /** The files the set was read from. */
  readonly files: readonly string[];
  /** A short hash of the documents: equal revisions mean equal policies. */
  readonly revision: string;
}

function patterns(list: readonly string[]): CompiledPatterns {
  return { patterns: [...list], matches: compileGlobs(list) };
}

function compileDocument(document: PolicyDocument, file: string): CompiledImagePolicy | CompiledPullSecretPolicy | CompiledException {
  const name = document.metadata.name;
  switch (document.kind) {
    case 'ImagePolicy': {
      const { spec } = document;
      const rules = spec.rules ?? {};
      const vulnerabilities = rules.vulnerabilities;
      const compiled: CompiledImagePolicy = {
        kind: 'ImagePolicy',
        name,
        file,
        action: spec.action ?? 'deny',
        match: compileMatch(spec.match),
        requireDigest: rules.requireDigest ?? false,
        pinDigest: spec.pinDigest ?? false,
        ...(rules.allowedRegistries ? { allowedRegistries: patterns(rules.allowedRegistries) } : {}),
        ...(rules.disallowedTags ? { disallowedTags: patterns(rules.disallowedTags) } : {}),
        ...(vulnerabilities
          ? {
              vulnerabilities: {
                ...(vulnerabilities.maxSeverity ? { maxSeverity: vulnerabilities.maxSeverity } : {}),
                maxCount: { ...vulnerabilities.maxCount },
                ignoreUnfixed: vulnerabilities.ignoreUnfixed ?? false,
                allowlist: (vulnerabilities.allowlist ?? []).map((entry) => ({ ...entry, expiresAt: expiryInstant(entry.expires) })),
                ...(vulnerabilities.maxScanAge
                  ? { maxScanAge: vulnerabilities.maxScanAge, maxScanAgeMs: parseDuration(vulnerabilities.maxScanAge) }
                  : {}),
                verdictStates: { ...DEFAULT_STATE_ACTIONS, ...vulnerabilities.verdictStates },
              },
            }
          : {}),
      };
      return compiled;
    }
    case 'PullSecretPolicy': {
      const { spec } = document;
      return {
        kind: 'PullSecretPolicy',
        name,
        file,
        match: compileMatch(spec.match),
        registries: patterns(spec.registries.map((registry) => registry.toLowerCase())),
        secretName: spec.secretName,
        ...(spec.source ? { source: { ...spec.source } } : {}),
      };
    }
    case 'PolicyException': {
      const { spec } = document;
      return {
        kind: 'PolicyException',
        name,
        file,
        policies: compileGlobs(spec.policies),
        ...(spec.rules ? { rules: new Set(spec.rules) } : {}),
        namespaces: compileGlobs(spec.namespaces ?? ['*']),
        images: compileImageGlobs(spec.images ?? ['*']),
        ...(spec.cves ? { cves: new Set(spec.cves) } : {}),
        reason: spec.reason,
        expires: spec.expires,
        expiresAt: expiryInstant(spec.expires),
      };
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Set) && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Compiles validated documents (names already checked unique) into a frozen PolicySet. */
export function compilePolicySet(documents: readonly SourcedDocument[], files: readonly string[]): PolicySet {
  const imagePolicies: CompiledImagePolicy[] = [];
  const pullSecretPolicies: CompiledPullSecretPolicy[] = [];
  const exceptions: CompiledException[] = [];
  const hash = createHash('sha256');
  for (const { document, file } of documents) {
    hash.update(JSON.stringify(document)).update('\n');
    const compiled = compileDocument(document, file);
    if (compiled.kind === 'ImagePolicy') imagePolicies.push(compiled);
    else if (compiled.kind === 'PullSecretPolicy') pullSecretPolicies.push(compiled);
    else exceptions.push(compiled);
  }
  return deepFreeze({ imagePolicies, pullSecretPolicies, exceptions, files: [...files], revision: hash.digest('hex').slice(0, 12) });
}

/** An empty set (no policies: everything is admitted, no pull secrets are added). */
export function emptyPolicySet(): PolicySet {
  return compilePolicySet([], []);
}
