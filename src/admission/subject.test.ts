import { describe, expect, it } from 'vitest';
import { namespaceExcluder, reviewImages } from './subject.js';

describe('namespaceExcluder', () => {
  it('matches names against every glob, the same way each time it is asked', () => {
    const excluded = namespaceExcluder(['kube-*', 'portcullis', '.hidden-*']);
    for (let round = 0; round < 3; round += 1) {
      expect(['kube-system', 'kube-public', 'portcullis', '.hidden-a'].map(excluded)).toEqual([true, true, true, true]);
      expect(['default', 'team-kube', 'portcullis-x', ''].map(excluded)).toEqual([false, false, false, false]);
    }
  });

  it('excludes nothing without globs', () => {
    expect(namespaceExcluder([])('kube-system')).toBe(false);
  });
});

describe('reviewImages', () => {
  const container = (image: string, index: number) => ({ image, container: `c${index}`, containerType: 'containers' as const, pointer: `/spec/containers/${index}/image` });

  it('parses each reference once per text and hands out one frozen object', () => {
    const first = reviewImages([container('registry.example.com/a/b:1', 0), container('registry.example.com/a/b:1', 1)]);
    expect(first.invalid).toEqual([]);
    const [one, two] = first.images;
    expect(one?.reference).toBe(two?.reference);
    expect(one?.reference).toMatchObject({ registry: 'registry.example.com', repository: 'a/b', tag: '1' });
    expect(Object.isFrozen(one?.reference)).toBe(true);
    expect(() => Object.assign(one?.reference ?? {}, { tag: '2' })).toThrow(TypeError);
    expect(reviewImages([container('registry.example.com/a/b:1', 0)]).images[0]?.reference).toMatchObject({ tag: '1' });
  });

  it('turns a reference that does not parse into an error result that denies, every time', () => {
    for (let round = 0; round < 2; round += 1) {
      const { images, invalid } = reviewImages([container('Not A Reference', 0)]);
      expect(images).toEqual([]);
      expect(invalid).toMatchObject([{ policy: 'portcullis', rule: 'imageReference', status: 'error', action: 'deny', pointer: '/spec/containers/0/image' }]);
    }
  });
});
