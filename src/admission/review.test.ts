import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PortcullisError } from '../errors.js';
import { decodeAdmissionReview, encodeAdmissionResponse } from './review.js';

/** Kubernetes' own round-trip fixture: every field of AdmissionReview v1, placeholder values. */
const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/admission/reference/admission.k8s.io.v1.AdmissionReview.json', import.meta.url), 'utf8')) as {
  apiVersion: string;
  request: Record<string, unknown>;
  response: Record<string, unknown>;
};

function failure(body: unknown): string {
  try {
    decodeAdmissionReview(body);
  } catch (error) {
    expect(error).toBeInstanceOf(PortcullisError);
    expect((error as PortcullisError).status).toBe(400);
    return (error as PortcullisError).message;
  }
  throw new Error('expected decodeAdmissionReview to throw');
}

describe('AdmissionReview v1 codec', () => {
  it('decodes the Kubernetes round-trip fixture once its placeholder operation is a real one', () => {
    const review = decodeAdmissionReview({ ...fixture, request: { ...fixture.request, operation: 'UPDATE' } });
    expect(review.request.uid).toBe('uidValue');
    expect(review.request.kind).toEqual({ group: 'groupValue', version: 'versionValue', kind: 'kindValue' });
    expect(review.request.dryRun).toBe(true);
    expect(review.request.userInfo?.groups).toEqual(['groupsValue']);
  });

  it('answers with the field names and JSON types of the fixture response', () => {
    const review = decodeAdmissionReview({ ...fixture, request: { ...fixture.request, operation: 'CREATE' } });
    const answer = encodeAdmissionResponse(review, { allowed: true, warnings: ['w'], auditAnnotations: { k: 'v' }, patch: [{ op: 'add', path: '/a', value: 1 }] });
    expect(answer.apiVersion).toBe(fixture.apiVersion);
    expect(answer.kind).toBe('AdmissionReview');
    const expectedKeys = Object.keys(fixture.response).filter((key) => key !== 'status');
    expect(Object.keys(answer.response).sort()).toEqual(expectedKeys.sort());
    for (const key of expectedKeys) expect(typeof (answer.response as unknown as Record<string, unknown>)[key]).toBe(typeof fixture.response[key]);
    expect(answer.response.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString())).toEqual([{ op: 'add', path: '/a', value: 1 }]);
  });

  it('encodes the patch of the Kubernetes documentation example byte for byte', () => {
    const review = decodeAdmissionReview({ ...fixture, request: { ...fixture.request, operation: 'CREATE' } });
    // The docs' example has spaces after separators; the bytes differ, the decoded patch must not.
    const docs = 'W3sib3AiOiAiYWRkIiwgInBhdGgiOiAiL3NwZWMvcmVwbGljYXMiLCAidmFsdWUiOiAzfV0=';
    const ours = encodeAdmissionResponse(review, { allowed: true, patch: [{ op: 'add', path: '/spec/replicas', value: 3 }] }).response.patch ?? '';
    expect(JSON.parse(Buffer.from(ours, 'base64').toString())).toEqual(JSON.parse(Buffer.from(docs, 'base64').toString()));
  });

  it('sends status 403 with the message on denial, and no patch even if one was computed', () => {
    const review = decodeAdmissionReview({ ...fixture, apiVersion: 'admission.k8s.io/v1beta1', request: { ...fixture.request, operation: 'CREATE' } });
    const answer = encodeAdmissionResponse(review, { allowed: false, message: 'line 1\nline 2', patch: [{ op: 'add', path: '/a', value: 1 }], warnings: [] });
    expect(answer).toEqual({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: 'uidValue', allowed: false, status: { code: 403, message: 'line 1\nline 2', reason: 'Forbidden' } },
    });
  });

  it.each([
    ['a body that is not an object', [], /^AdmissionReview \(body\): must be object/],
    ['another kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} }, /^AdmissionReview \/kind: must be equal to constant "AdmissionReview", got "Pod"$/],
    ['an unknown apiVersion', { apiVersion: 'admission.k8s.io/v2', kind: 'AdmissionReview', request: {} }, /\/apiVersion: must be equal to one of the allowed values \("admission.k8s.io\/v1", "admission.k8s.io\/v1beta1"\), got "admission.k8s.io\/v2"/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /^AdmissionReview \/request: is required$/],
    ['an empty uid', { ...fixture, request: { ...fixture.request, uid: '', operation: 'CREATE' } }, /^AdmissionReview \/request\/uid: must NOT have fewer than 1 characters, got ""$/],
    ['a kind without its kind', { ...fixture, request: { ...fixture.request, operation: 'CREATE', kind: { group: '', version: 'v1' } } }, /^AdmissionReview \/request\/kind\/kind: is required$/],
  ])('rejects %s, saying where, what was expected and what came', (_name, body, message) => {
    expect(failure(body)).toMatch(message);
  });
});
