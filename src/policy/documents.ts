/**
 * The policy documents as they are written in YAML, after they passed policies/policy.schema.json.
 * These types mirror the schema one-to-one (src/policy/schema.test.ts checks that a document using
 * every field of the schema is valid and type-checks as a PolicyDocument); compile.ts turns them into
 * the immutable PolicySet the engine evaluates.
 */
import type { Severity } from './types.js';

export const API_VERSION = 'portcullis.io/v1alpha1';
export const POLICY_KINDS = ['ImagePolicy', 'PullSecretPolicy', 'PolicyException'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** Rule names of an ImagePolicy, as they appear in `[policy/rule]` messages and exceptions. */
export const IMAGE_RULES = ['vulnerabilities', 'allowedRegistries', 'disallowedTags', 'requireDigest'] as const;
export type ImageRuleName = (typeof IMAGE_RULES)[number];

/** The verdict states a policy decides about, plus `stale` (scanned, but longer ago than maxScanAge). */
export const STATE_KEYS = ['pending', 'unscanned', 'failed', 'unsupported', 'unavailable', 'stale'] as const;
export type StateKey = (typeof STATE_KEYS)[number];
export type StateAction = 'allow' | 'warn' | 'deny';

export interface Metadata {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface MatchSpec {
  namespaces?: string[];
  excludeNamespaces?: string[];
  namespaceSelector?: LabelSelector;
  images?: string[];
  excludeImages?: string[];
}

export interface AllowlistEntry {
  id: string;
  reason: string;
  expires: string;
}

export interface VulnerabilityRuleSpec {
  maxSeverity?: Severity;
  maxCount?: Partial<Record<Severity, number>>;
  ignoreUnfixed?: boolean;
  allowlist?: AllowlistEntry[];
  maxScanAge?: string;
  verdictStates?: Partial<Record<StateKey, StateAction>>;
}

export interface ImagePolicySpec {
  action?: 'deny' | 'warn' | 'audit';
  match?: MatchSpec;
  rules?: {
    vulnerabilities?: VulnerabilityRuleSpec;
    allowedRegistries?: string[];
    disallowedTags?: string[];
    requireDigest?: boolean;
  };
  pinDigest?: boolean;
}

export interface PullSecretPolicySpec {
  match?: MatchSpec;
  registries: string[];
  secretName: string;
  source?: { namespace: string; name: string };
}

export interface PolicyExceptionSpec {
  policies: string[];
  rules?: ImageRuleName[];
  namespaces?: string[];
  images?: string[];
  cves?: string[];
  reason: string;
  expires: string;
}

interface DocumentBase<K extends PolicyKind, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: Metadata;
  spec: S;
}

export type ImagePolicyDocument = DocumentBase<'ImagePolicy', ImagePolicySpec>;
export type PullSecretPolicyDocument = DocumentBase<'PullSecretPolicy', PullSecretPolicySpec>;
export type PolicyExceptionDocument = DocumentBase<'PolicyException', PolicyExceptionSpec>;
export type PolicyDocument = ImagePolicyDocument | PullSecretPolicyDocument | PolicyExceptionDocument;

/** A validated document and where it came from (for messages and lint). */
export interface SourcedDocument {
  document: PolicyDocument;
  file: string;
  line: number;
  column: number;
  /** Where the node at `pointer` (`/spec/expires`) is written; the document start when absent. */
  locate(pointer: string): { file: string; line: number; column: number };
}
