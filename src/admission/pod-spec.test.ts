import { describe, expect, it } from 'vitest';
import { containerImages, isWorkloadKind, locatePodSpec } from './pod-spec.js';

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

describe('containerImages', () => {
  it('points at every image of every container type, the same way on every call', () => {
    const spec = {
      template: {
        spec: {
          initContainers: [{ name: 'init', image: 'a:1' }],
          containers: [{ name: 'app', image: 'b:1' }, { image: 'c:1' }],
          ephemeralContainers: [{ name: 'debug', image: 'd:1' }],
        },
      },
    };
    const location = locatePodSpec('Deployment', { spec });
    if (!location) throw new Error('no pod spec located');
    const expected = [
      { pointer: '/spec/template/spec/initContainers/0/image', container: 'init', containerType: 'initContainers', image: 'a:1' },
      { pointer: '/spec/template/spec/containers/0/image', container: 'app', containerType: 'containers', image: 'b:1' },
      { pointer: '/spec/template/spec/containers/1/image', container: 'containers[1]', containerType: 'containers', image: 'c:1' },
      { pointer: '/spec/template/spec/ephemeralContainers/0/image', container: 'debug', containerType: 'ephemeralContainers', image: 'd:1' },
    ];
    expect(containerImages(location)).toEqual(expected);
    expect(containerImages(location)).toEqual(expected);
  });

  it('points right past a thousand containers too', () => {
    const containers = Array.from({ length: 1030 }, (_, index) => ({ name: `c${index}`, image: 'x:1' }));
    const location = locatePodSpec('Pod', { spec: { containers } });
    if (!location) throw new Error('no pod spec located');
    expect(containerImages(location).at(-1)?.pointer).toBe('/spec/containers/1029/image');
  });
});
