import { describe, expect, it } from 'vitest';
import { CelError, compileCel } from './cel-subset.js';

const pod = { metadata: { name: 'web', labels: { app: 'web' } }, spec: { containers: [{ image: 'a:1' }] } };
const vars = {
  object: pod,
  oldObject: { ...pod, spec: { containers: [{ image: 'a:0' }] } },
  request: { operation: 'UPDATE', dryRun: false, userInfo: { username: 'alice', groups: ['dev'] } },
};

describe('the CEL subset used for matchConditions', () => {
  it.each([
    ["the shipped spec-changed condition on a changed spec", "request.operation != 'UPDATE' || object.spec != oldObject.spec", vars, true],
    ['the shipped condition on CREATE, where oldObject is null', "request.operation != 'UPDATE' || object.spec != oldObject.spec", { ...vars, oldObject: null, request: { operation: 'CREATE' } }, true],
    ['the shipped condition on an unchanged spec', "request.operation != 'UPDATE' || object.spec != oldObject.spec", { ...vars, oldObject: pod }, false],
    ['has() of a present field', 'has(object.metadata.labels)', vars, true],
    ['has() of an absent field', 'has(object.metadata.annotations)', vars, false],
    ['list membership with in', "request.userInfo.username in ['alice', 'bob']", vars, true],
    ['map key membership with in', "'app' in object.metadata.labels", vars, true],
    ['negation and grouping', "!(request.dryRun) && request.userInfo.groups[0] == 'dev'", vars, true],
    ['false && error is false', "false && object.nothing == 1", vars, false],
    ['error || true is true', "object.nothing == 1 || true", vars, true],
  ])('%s', (_name, expression, variables, expected) => {
    expect(compileCel(expression)(variables)).toBe(expected);
  });

  it.each([
    ['a missing field', 'object.nothing == 1', 'no such key: nothing'],
    ['a field of null', "oldObject.spec == 1", 'cannot select "spec" from null'],
    ['a non-bool result', 'object.metadata.name', 'expected a bool, got string'],
    ['an unknown variable', 'params.x == 1', "undeclared reference to 'params'"],
  ])('raises a runtime error for %s', (_name, expression, message) => {
    expect(() => compileCel(expression)({ ...vars, oldObject: null })).toThrow(message);
  });

  it.each([
    ['arithmetic', 'object.spec.replicas + 1 == 2'],
    ['a macro', 'object.spec.containers.all(c, c.image != "")'],
    ['an unterminated string', "request.operation == 'UPD"],
  ])('refuses %s, which is outside the subset', (_name, expression) => {
    expect(() => compileCel(expression)(vars)).toThrow(CelError);
  });
});
