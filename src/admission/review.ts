import { Ajv, type JSONSchemaType, type SchemaObject } from 'ajv';
import { PortcullisError } from '../errors.js';

/**
 * The AdmissionReview v1 codec: what kube-apiserver POSTs and what the webhooks answer. Field names
 * and nesting follow k8s.io/api admission/v1 (see the round-trip fixture in the reference material);
 * only the fields Portcullis reads are typed, everything else passes through untouched.
 */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  userInfo?: { username?: string; uid?: string; groups?: string[] };
  /** The submitted object; null for DELETE. */
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionReviewRequest {
  apiVersion: string;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  /** base64 of an RFC 6902 JSON Patch array. */
  patch?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewResponse {
  apiVersion: string;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export const ADMISSION_API_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;

const gvk: JSONSchemaType<GroupVersionKind> = {
  type: 'object',
  required: ['group', 'version', 'kind'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, kind: { type: 'string', minLength: 1 } },
};

const gvr: JSONSchemaType<GroupVersionResource> = {
  type: 'object',
  required: ['group', 'version', 'resource'],
  properties: { group: { type: 'string' }, version: { type: 'string' }, resource: { type: 'string', minLength: 1 } },
};

// `object` and `oldObject` are any JSON, which JSONSchemaType cannot express: the schema is plain and
// the compiled validator is the type guard.
const reviewSchema: SchemaObject = {
  type: 'object',
  required: ['apiVersion', 'kind', 'request'],
  properties: {
    apiVersion: { type: 'string', enum: [...ADMISSION_API_VERSIONS] },
    kind: { type: 'string', const: 'AdmissionReview' },
    request: {
      type: 'object',
      required: ['uid', 'kind', 'resource', 'operation'],
      properties: {
        uid: { type: 'string', minLength: 1 },
        kind: gvk,
        resource: gvr,
        subResource: { type: 'string', nullable: true },
        name: { type: 'string', nullable: true },
        namespace: { type: 'string', nullable: true },
        operation: { type: 'string', enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] },
        userInfo: {
          type: 'object',
          nullable: true,
          required: [],
          properties: {
            username: { type: 'string', nullable: true },
            uid: { type: 'string', nullable: true },
            groups: { type: 'array', items: { type: 'string' }, nullable: true },
          },
        },
        object: {},
        oldObject: {},
        dryRun: { type: 'boolean', nullable: true },
      },
    },
  },
};

const validateReview = new Ajv({ allErrors: false, strict: false }).compile<AdmissionReviewRequest>(reviewSchema);

/**
 * Checks a decoded body is an AdmissionReview with a request. Throws REQUEST_MALFORMED (400)
 * naming the field, what was expected and what came (`/request/uid: must have required property`).
 */
export function decodeAdmissionReview(body: unknown): AdmissionReviewRequest {
  if (validateReview(body)) return body;
  const error = validateReview.errors?.[0];
  let where = error?.instancePath || '(body)';
  let what = error?.message ?? 'is not an AdmissionReview';
  if (error?.keyword === 'required' && 'missingProperty' in error.params) {
    where = `${error.instancePath}/${String(error.params.missingProperty)}`;
    what = 'is required';
  } else if (error?.params && 'allowedValues' in error.params) {
    what += ` (${(error.params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(', ')})`;
  } else if (error?.params && 'allowedValue' in error.params) {
    what += ` ${JSON.stringify(error.params.allowedValue)}`;
  }
  const got = error ? valueAt(body, error.instancePath) : body;
  const gotText = got === undefined || error?.keyword === 'required' ? '' : `, got ${truncate(JSON.stringify(got), 60)}`;
  throw new PortcullisError('REQUEST_MALFORMED', `AdmissionReview ${where}: ${what}${gotText}`, { detail: { pointer: where } });
}

function valueAt(root: unknown, pointer: string): unknown {
  let value = root;
  for (const token of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[token.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}

function truncate(text: string | undefined, max: number): string {
  if (text === undefined) return 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export interface Answer {
  allowed: boolean;
  /** The denial message (one line per violation); sent with status code 403. */
  message?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
  /** RFC 6902 operations; encoded only when there is at least one. */
  patch?: readonly unknown[];
}

/**
 * Builds the response review: same apiVersion and kind as the request, the uid echoed, status 403
 * with the message on denial, and `patchType` with a base64 patch only when there is a patch.
 */
export function encodeAdmissionResponse(review: Pick<AdmissionReviewRequest, 'apiVersion' | 'request'>, answer: Answer): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid: review.request.uid, allowed: answer.allowed };
  if (!answer.allowed) response.status = { code: 403, message: answer.message ?? 'denied by policy', reason: 'Forbidden' };
  if (answer.warnings && answer.warnings.length > 0) response.warnings = [...answer.warnings];
  if (answer.auditAnnotations && Object.keys(answer.auditAnnotations).length > 0) response.auditAnnotations = { ...answer.auditAnnotations };
  if (answer.allowed && answer.patch && answer.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(answer.patch)).toString('base64');
  }
  return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response };
}
