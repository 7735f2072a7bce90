import { describe, expect, it } from 'vitest';
import { isWorkloadKind, locatePodSpec } from './pod-spec.js';

describe('locatePodSpec', () => {
  it.each([
    ['a Pod', 'Pod', { spec: { containers: [] } }, '/spec'],
    ['a CronJob', 'CronJob', { spec: { jobTemplate: { spec: { template: { spec: { containers: [] } } } } } }, '/spec/jobTemplate/spec/template/spec'],
  ])('finds the pod spec of %s', (_name, kind, object, specPointer) => {
    expect(locatePodSpec(kind, object)?.specPointer).toBe(specPointer);
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__', 'ConfigMap'])('treats kind %s as having no pod spec instead of throwing', (kind) => {
    expect(isWorkloadKind(kind)).toBe(false);
    expect(locatePodSpec(kind, { spec: { containers: [] } })).toBeUndefined();
  });
});
