/**
 * JSON schemas of the audit API, beside the TypeScript types they describe. `JSONSchemaType<T>`
 * makes the compiler check each schema against its type, so the two cannot drift; fastify uses
 * the same schemas to validate query strings and to serialise responses, and src/audit/store.ts
 * uses them to validate the JSON columns it reads back.
 */
import type { JSONSchemaType } from 'ajv';
import type { DecisionRecord } from '../admission/decision.js';
import type { PolicyResult } from '../policy/types.js';
import type { DecisionMatch } from './filter.js';

const str = { type: 'string' } as const;
const optStr = { type: 'string', nullable: true } as const;
const strList = { type: 'array', items: { type: 'string' } } as const;

export const policyResultSchema: JSONSchemaType<PolicyResult> = {
  type: 'object',
  required: ['policy', 'rule', 'status', 'message', 'action'],
  properties: {
    policy: str,
    rule: str,
    status: { type: 'string', enum: ['pass', 'fail', 'warn', 'skip', 'error'] },
    message: str,
    action: { type: 'string', enum: ['deny', 'warn', 'audit'] },
    image: optStr,
    pointer: optStr,
    digest: optStr,
    exception: optStr,
  },
};

export type DecisionImage = DecisionRecord['images'][number];

export const decisionImageSchema: JSONSchemaType<DecisionImage> = {
  type: 'object',
  required: ['image', 'pointer'],
  properties: { image: str, pointer: str, digest: optStr },
};

/** A decision as the API returns it: the record plus its id in the store. */
export interface StoredDecision extends DecisionRecord {
  id: number;
}

export const storedDecisionSchema: JSONSchemaType<StoredDecision> = {
  type: 'object',
  required: ['id', 'time', 'uid', 'webhook', 'user', 'operation', 'namespace', 'kind', 'name', 'images', 'results', 'decision', 'mode', 'warnings', 'patch', 'dryRun', 'durationMs'],
  properties: {
    id: { type: 'integer' },
    time: { type: 'string', format: 'date-time' },
    uid: str,
    webhook: { type: 'string', enum: ['validate', 'mutate'] },
    user: {
      type: 'object',
      required: ['username', 'groups'],
      properties: { username: str, groups: strList },
    },
    operation: str,
    namespace: str,
    kind: str,
    name: str,
    images: { type: 'array', items: decisionImageSchema },
    results: { type: 'array', items: policyResultSchema },
    decision: { type: 'string', enum: ['allow', 'deny'] },
    mode: { type: 'string', enum: ['deny', 'warn', 'audit', 'none'] },
    warnings: strList,
    patch: strList,
    dryRun: { type: 'boolean' },
    durationMs: { type: 'number' },
  },
};

/** Query string of GET /api/v1/audit/decisions (all optional; see docs/audit.md). */
export interface DecisionQuery extends DecisionMatch {
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

const optParam = { type: 'string', minLength: 1, nullable: true } as const;

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export const decisionQuerySchema: JSONSchemaType<DecisionQuery> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: optParam,
    until: optParam,
    namespace: optParam,
    kind: optParam,
    name: optParam,
    image: optParam,
    digest: optParam,
    policy: optParam,
    decision: { type: 'string', enum: ['allow', 'deny'], nullable: true },
    user: optParam,
    operation: { type: 'string', enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'], nullable: true },
    dryRun: { type: 'boolean', nullable: true },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, nullable: true },
    cursor: optParam,
  },
};

export interface DecisionPage {
  items: StoredDecision[];
  /** Pass as `cursor` to get the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export const decisionPageSchema: JSONSchemaType<DecisionPage> = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: storedDecisionSchema },
    // `JSONSchemaType` models `string | null` only for optional properties; nextCursor is required.
    nextCursor: { type: 'string', nullable: true } as unknown as JSONSchemaType<string>,
  },
};

export interface SummaryQuery {
  since?: string;
  until?: string;
  top?: number;
}

export const summaryQuerySchema: JSONSchemaType<SummaryQuery> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: optParam,
    until: optParam,
    top: { type: 'integer', minimum: 1, maximum: 100, nullable: true },
  },
};

export interface Summary {
  window: { since: string; until: string };
  total: number;
  /** Dry-run decisions are counted in every figure and also here. */
  dryRun: number;
  byDecision: { allow: number; deny: number };
  byMode: { deny: number; warn: number; audit: number; none: number };
  /** Per policy: decisions in which its worst result had each status. */
  byPolicy: { policy: string; fail: number; warn: number; error: number; pass: number; skip: number }[];
  byNamespace: { namespace: string; total: number; denied: number }[];
  byImage: { image: string; total: number; denied: number }[];
  topDeniedImages: { image: string; denied: number; worstCves: string[] }[];
}

const count = { type: 'integer', minimum: 0 } as const;

export const summarySchema: JSONSchemaType<Summary> = {
  type: 'object',
  required: ['window', 'total', 'dryRun', 'byDecision', 'byMode', 'byPolicy', 'byNamespace', 'byImage', 'topDeniedImages'],
  properties: {
    window: { type: 'object', required: ['since', 'until'], properties: { since: str, until: str } },
    total: count,
    dryRun: count,
    byDecision: { type: 'object', required: ['allow', 'deny'], properties: { allow: count, deny: count } },
    byMode: { type: 'object', required: ['deny', 'warn', 'audit', 'none'], properties: { deny: count, warn: count, audit: count, none: count } },
    byPolicy: {
      type: 'array',
      items: {
        type: 'object',
        required: ['policy', 'fail', 'warn', 'error', 'pass', 'skip'],
        properties: { policy: str, fail: count, warn: count, error: count, pass: count, skip: count },
      },
    },
    byNamespace: {
      type: 'array',
      items: { type: 'object', required: ['namespace', 'total', 'denied'], properties: { namespace: str, total: count, denied: count } },
    },
    byImage: {
      type: 'array',
      items: { type: 'object', required: ['image', 'total', 'denied'], properties: { image: str, total: count, denied: count } },
    },
    topDeniedImages: {
      type: 'array',
      items: { type: 'object', required: ['image', 'denied', 'worstCves'], properties: { image: str, denied: count, worstCves: strList } },
    },
  },
};

/** One container of a running pod that breaks a policy now. */
export interface RunningViolation {
  namespace: string;
  pod: string;
  /** The controller that owns the pod (`ReplicaSet/web-7d9f`), when there is one. */
  owner?: string;
  container: string;
  image: string;
  digest?: string;
  policy: string;
  rule: string;
  status: 'fail' | 'warn' | 'error';
  action: 'deny' | 'warn' | 'audit';
  message: string;
  /** Worst severity among the image's findings, when it was scanned. */
  severity?: 'Unknown' | 'Negligible' | 'Low' | 'Medium' | 'High' | 'Critical';
}

export interface RunningReport {
  /** `disabled`: no Kubernetes or no policies; `starting`: the first list has not finished. */
  state: 'disabled' | 'starting' | 'ready';
  evaluatedAt: string | null;
  /** What triggered the last full evaluation (`start`, `policies changed`, `scan finished`, …). */
  reason: string | null;
  pods: number;
  violatingPods: number;
  violations: RunningViolation[];
}

export const runningViolationSchema: JSONSchemaType<RunningViolation> = {
  type: 'object',
  required: ['namespace', 'pod', 'container', 'image', 'policy', 'rule', 'status', 'action', 'message'],
  properties: {
    namespace: str,
    pod: str,
    owner: optStr,
    container: str,
    image: str,
    digest: optStr,
    policy: str,
    rule: str,
    status: { type: 'string', enum: ['fail', 'warn', 'error'] },
    action: { type: 'string', enum: ['deny', 'warn', 'audit'] },
    message: str,
    severity: { type: 'string', enum: ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical'], nullable: true },
  },
};

export const runningReportSchema: JSONSchemaType<RunningReport> = {
  type: 'object',
  required: ['state', 'evaluatedAt', 'reason', 'pods', 'violatingPods', 'violations'],
  properties: {
    state: { type: 'string', enum: ['disabled', 'starting', 'ready'] },
    evaluatedAt: { type: 'string', nullable: true } as unknown as JSONSchemaType<string>,
    reason: { type: 'string', nullable: true } as unknown as JSONSchemaType<string>,
    pods: count,
    violatingPods: count,
    violations: { type: 'array', items: runningViolationSchema },
  },
};

export interface RunningQuery {
  namespace?: string;
}

export const runningQuerySchema: JSONSchemaType<RunningQuery> = {
  type: 'object',
  additionalProperties: false,
  properties: { namespace: optParam },
};
