import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryEvent } from '../../src/registry/events.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { filesUnder } from '../helpers/tmp.js';
import { errorCode, pushBlob, pushImage, rawRequest, sha256, type ErrorsBody } from './oci-client.js';

let registry: TestRegistry;
const events: RegistryEvent[] = [];

beforeAll(async () => {
  registry = await startTestRegistry();
  registry.role.events.subscribe((event) => {
    events.push(event);
  });
});

afterAll(async () => {
  await registry.close();
});

/** Every file of the registry's blob storage, relative to it: what a failed upload must not change. */
function storedFiles(): string[] {
  const root = join(registry.dataDir, 'registry');
  return filesUnder(root).map((file) => relative(root, file));
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

describe('the API base', () => {
  it('answers GET /v2/ with 200 and the API version header', async () => {
    const response = await registry.call('/v2/');
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('sends the API version header on errors too, in the spec envelope', async () => {
    const response = await registry.call('/v2/library/nothing/manifests/latest');
    expect(response.status).toBe(404);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await errorCode(response)).toBe('MANIFEST_UNKNOWN');
  });
});

describe('pushing and pulling blobs', () => {
  it('takes a monolithic upload as POST then PUT, and serves it with HEAD and GET', async () => {
    const content = Buffer.from('monolithic blob content');
    const digest = sha256(content);
    const started = await registry.call('/v2/library/blobs/blobs/uploads/', { method: 'POST' });
    expect(started.status).toBe(202);
    const location = started.headers.get('location') ?? '';
    expect(location).toMatch(/^\/v2\/library\/blobs\/blobs\/uploads\/[0-9a-f-]+$/);
    const put = await registry.call(`${location}?digest=${digest}`, { method: 'PUT', body: content, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/library/blobs/blobs/${digest}`);
    expect(put.headers.get('docker-content-digest')).toBe(digest);

    const head = await registry.call(`/v2/library/blobs/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(content.length));
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    const get = await registry.call(`/v2/library/blobs/blobs/${digest}`);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(content);
  });

  it('takes a single POST with the digest', async () => {
    const digest = await pushBlob(registry, 'library/single', 'one shot');
    expect((await registry.call(`/v2/library/single/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });

  it.each([
    ['a closed range', 'bytes=2-5', 206, 'bytes 2-5/10', '2345'],
    ['an open-ended range', 'bytes=7-', 206, 'bytes 7-9/10', '789'],
    ['a suffix range', 'bytes=-3', 206, 'bytes 7-9/10', '789'],
  ])('serves %s of a blob with 206', async (_name, range, status, contentRange, body) => {
    const digest = await pushBlob(registry, 'library/ranges', '0123456789');
    const response = await registry.call(`/v2/library/ranges/blobs/${digest}`, { headers: { range } });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-range')).toBe(contentRange);
    expect(await response.text()).toBe(body);
  });

  it('answers a range beyond the blob with 416', async () => {
    const digest = await pushBlob(registry, 'library/ranges', '0123456789');
    const response = await registry.call(`/v2/library/ranges/blobs/${digest}`, { headers: { range: 'bytes=20-30' } });
    expect(response.status).toBe(416);
    expect(response.headers.get('content-range')).toBe('bytes */10');
  });

  it('refuses content that does not match its digest with DIGEST_INVALID and stores nothing', async () => {
    const before = storedFiles();
    const claimed = sha256('what the client claims');
    const response = await registry.call(`/v2/library/bad/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: 'something else', headers: { 'content-type': 'application/octet-stream' } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorsBody;
    expect(body.errors[0]?.code).toBe('DIGEST_INVALID');
    expect(body.errors[0]?.message).toContain(sha256('something else'));
    expect((await registry.call(`/v2/library/bad/blobs/${claimed}`, { method: 'HEAD' })).status).toBe(404);
    expect((await registry.call(`/v2/library/bad/blobs/${sha256('something else')}`, { method: 'HEAD' })).status).toBe(404);
    expect(storedFiles()).toEqual(before);
  });

  it('answers an unknown blob with 404 BLOB_UNKNOWN', async () => {
    const response = await registry.call(`/v2/library/single/blobs/${sha256('never pushed')}`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('BLOB_UNKNOWN');
  });

  it('deletes a blob from a repository', async () => {
    const digest = await pushBlob(registry, 'library/deleting', 'to be deleted');
    const deleted = await registry.call(`/v2/library/deleting/blobs/${digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    expect((await registry.call(`/v2/library/deleting/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
  });
});

describe('chunked uploads', () => {
  async function start(repository: string): Promise<string> {
    const response = await registry.call(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    expect(response.status).toBe(202);
    return response.headers.get('location') ?? '';
  }

  it('accepts chunks in order, reports progress with Range, and commits on PUT', async () => {
    const content = Buffer.from('first-second-third');
    const location = await start('library/chunked');
    const first = await registry.call(location, { method: 'PATCH', body: content.subarray(0, 6), headers: { 'content-type': 'application/octet-stream', 'content-range': '0-5' } });
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-5');
    const second = await registry.call(first.headers.get('location') ?? '', { method: 'PATCH', body: content.subarray(6, 13), headers: { 'content-type': 'application/octet-stream', 'content-range': '6-12' } });
    expect(second.status).toBe(202);
    expect(second.headers.get('range')).toBe('0-12');

    const status = await registry.call(location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-12');

    const digest = sha256(content);
    const done = await registry.call(`${location}?digest=${digest}`, { method: 'PUT', body: content.subarray(13), headers: { 'content-type': 'application/octet-stream', 'content-range': '13-17' } });
    expect(done.status).toBe(201);
    expect(done.headers.get('docker-content-digest')).toBe(digest);
    expect(Buffer.from(await (await registry.call(`/v2/library/chunked/blobs/${digest}`)).arrayBuffer())).toEqual(content);
  });

  it('refuses a chunked upload whose final PUT names another digest, discards it, and takes it again', async () => {
    const before = storedFiles();
    const content = Buffer.from('chunked content, finished under the wrong name');
    const location = await start('library/bad-chunked');
    const chunk = await registry.call(location, { method: 'PATCH', body: content.subarray(0, 10), headers: { 'content-type': 'application/octet-stream', 'content-range': '0-9' } });
    expect(chunk.status).toBe(202);
    const wrong = sha256('not this content');
    const done = await registry.call(`${location}?digest=${wrong}`, { method: 'PUT', body: content.subarray(10), headers: { 'content-type': 'application/octet-stream', 'content-range': `10-${content.length - 1}` } });
    expect(done.status).toBe(400);
    const body = (await done.json()) as ErrorsBody;
    expect(body.errors[0]?.code).toBe('DIGEST_INVALID');
    expect(body.errors[0]?.message).toContain(`content digest is ${sha256(content)}, the request said ${wrong}; nothing was stored`);
    // The discarded upload is gone, and neither name holds a blob.
    expect((await registry.call(location)).status).toBe(404);
    for (const digest of [wrong, sha256(content)]) expect((await registry.call(`/v2/library/bad-chunked/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    expect(storedFiles()).toEqual(before);
    // Redone from the start under its own digest, it is accepted.
    const again = await start('library/bad-chunked');
    const redone = await registry.call(`${again}?digest=${sha256(content)}`, { method: 'PUT', body: content, headers: { 'content-type': 'application/octet-stream' } });
    expect(redone.status).toBe(201);
  });

  it('refuses an out-of-order chunk with 416 and tells where to resume', async () => {
    const location = await start('library/chunked');
    await registry.call(location, { method: 'PATCH', body: 'abcde', headers: { 'content-type': 'application/octet-stream', 'content-range': '0-4' } });
    const skipped = await registry.call(location, { method: 'PATCH', body: 'xyz', headers: { 'content-type': 'application/octet-stream', 'content-range': '10-12' } });
    expect(skipped.status).toBe(416);
    expect(skipped.headers.get('range')).toBe('0-4');
    expect(skipped.headers.get('location')).toBe(location);
    expect(await errorCode(skipped)).toBe('BLOB_UPLOAD_INVALID');
    // The upload is intact and can go on from where it was.
    const resumed = await registry.call(location, { method: 'PATCH', body: 'fgh', headers: { 'content-type': 'application/octet-stream', 'content-range': '5-7' } });
    expect(resumed.status).toBe(202);
    expect(resumed.headers.get('range')).toBe('0-7');
  });

  it('refuses a Content-Range that disagrees with Content-Length', async () => {
    const location = await start('library/chunked');
    const response = await registry.call(location, { method: 'PATCH', body: 'abc', headers: { 'content-type': 'application/octet-stream', 'content-range': '0-9' } });
    expect(response.status).toBe(416);
  });

  it('cancels an upload with DELETE, after which the session is unknown', async () => {
    const location = await start('library/chunked');
    expect((await registry.call(location, { method: 'DELETE' })).status).toBe(204);
    const status = await registry.call(location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('does not let another repository use an upload session', async () => {
    const location = await start('library/chunked');
    const other = location.replace('library/chunked', 'library/other');
    expect((await registry.call(other)).status).toBe(404);
  });
});

describe('cross-repository mount', () => {
  it('mounts a blob from the repository named in from', async () => {
    const digest = await pushBlob(registry, 'library/source', 'shared layer');
    const response = await registry.call(`/v2/team/target/blobs/uploads/?mount=${digest}&from=library/source`, { method: 'POST' });
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe(`/v2/team/target/blobs/${digest}`);
    expect((await registry.call(`/v2/team/target/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });

  it('mounts automatically when from is absent but the caller can read the blob elsewhere', async () => {
    const digest = await pushBlob(registry, 'library/source', 'another shared layer');
    const response = await registry.call(`/v2/team/automount/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(response.status).toBe(201);
  });

  it('falls back to an upload session when the blob is not in from', async () => {
    const response = await registry.call(`/v2/team/target/blobs/uploads/?mount=${sha256('nowhere')}&from=library/source`, { method: 'POST' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toMatch(/\/blobs\/uploads\//);
  });
});

describe('manifests', () => {
  it('stores a manifest by tag and serves it by tag and by digest with its headers', async () => {
    const image = await pushImage(registry, 'library/app', 'v1');
    for (const reference of ['v1', image.digest]) {
      const response = await registry.call(`/v2/library/app/manifests/${reference}`, { headers: { accept: OCI_MANIFEST } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(OCI_MANIFEST);
      expect(response.headers.get('docker-content-digest')).toBe(image.digest);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(image.manifest);
    }
    const head = await registry.call('/v2/library/app/manifests/v1', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(image.manifest.length));
    expect(head.headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('answers a client whose Accept excludes the stored type with MANIFEST_UNKNOWN', async () => {
    await pushImage(registry, 'library/app', 'v1');
    const response = await registry.call('/v2/library/app/manifests/v1', { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('MANIFEST_UNKNOWN');
  });

  it('records the push as an event with what the scanner needs to tell images from charts', async () => {
    const image = await pushImage(registry, 'library/evented', 'v1');
    await registry.role.events.settle();
    const pushed = events.find((event) => event.type === 'artifact.pushed' && event.digest === image.digest);
    expect(pushed).toMatchObject({ repository: 'library/evented', tag: 'v1', mediaType: OCI_MANIFEST, configMediaType: 'application/vnd.oci.image.config.v1+json' });
    const recorded = await registry.role.events.recent(50);
    expect(recorded.some((event) => event.type === 'artifact.pushed' && event.digest === image.digest)).toBe(true);
  });

  it('emits tag.changed when a tag moves, and nothing when the same manifest is pushed again', async () => {
    const first = await pushImage(registry, 'library/moving', 'v1', { seed: 'one' });
    const second = await pushImage(registry, 'library/moving', 'v2', { seed: 'two' });
    const again = await registry.call('/v2/library/moving/manifests/v1', { method: 'PUT', body: first.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(again.status).toBe(201);
    const moved = await registry.call('/v2/library/moving/manifests/v1', { method: 'PUT', body: second.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(moved.status).toBe(201);
    await registry.role.events.settle();
    const seen = events.filter((event) => event.repository === 'library/moving').map((event) => [event.type, event.tag, event.digest, event.previousDigest]);
    expect(seen).toEqual([
      ['artifact.pushed', 'v1', first.digest, undefined],
      ['artifact.pushed', 'v2', second.digest, undefined],
      ['tag.changed', 'v1', second.digest, first.digest],
    ]);
  });

  it.each([
    ['invalid JSON', '{"schemaVersion":', OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
    ['an unknown media type', JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }), 'application/vnd.example.unknown+json', 400, 'MANIFEST_INVALID'],
    [
      'a media type field that contradicts Content-Type',
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
      OCI_MANIFEST,
      400,
      'MANIFEST_INVALID',
    ],
    ['schema version 1', JSON.stringify({ schemaVersion: 1, name: 'x' }), OCI_MANIFEST, 400, 'MANIFEST_INVALID'],
    [
      'a reference to a blob the repository does not have',
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('missing config'), size: 14 },
        layers: [],
      }),
      OCI_MANIFEST,
      400,
      'MANIFEST_BLOB_UNKNOWN',
    ],
  ])('refuses %s', async (_name, body, contentType, status, code) => {
    const response = await registry.call('/v2/library/refused/manifests/latest', { method: 'PUT', body, headers: { 'content-type': contentType } });
    expect(response.status).toBe(status);
    expect(await errorCode(response)).toBe(code);
  });

  it('refuses a manifest over 4 MiB with 413', async () => {
    const huge = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { padding: 'x'.repeat(4 * 1024 * 1024) } });
    const response = await registry.call('/v2/library/refused/manifests/huge', { method: 'PUT', body: huge, headers: { 'content-type': OCI_MANIFEST } });
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe('SIZE_INVALID');
  });

  it('refuses a manifest pushed by a digest that is not its own', async () => {
    const image = await pushImage(registry, 'library/app', 'v2');
    const response = await registry.call(`/v2/library/app/manifests/${sha256('other')}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe('DIGEST_INVALID');
  });

  it('stores an image index whose children exist, and refuses one with a missing child', async () => {
    const amd = await pushImage(registry, 'library/multi', 'amd64', { seed: 'amd64' });
    const arm = await pushImage(registry, 'library/multi', 'arm64', { seed: 'arm64' });
    const child = (image: typeof amd, architecture: string) => ({ mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length, platform: { architecture, os: 'linux' } });
    const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child(amd, 'amd64'), child(arm, 'arm64')] });
    const ok = await registry.call('/v2/library/multi/manifests/latest', { method: 'PUT', body: index, headers: { 'content-type': OCI_INDEX } });
    expect(ok.status).toBe(201);
    const fetched = await registry.call('/v2/library/multi/manifests/latest', { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
    expect(fetched.headers.get('content-type')).toBe(OCI_INDEX);

    const missing = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('no such child'), size: 10 }] });
    const refused = await registry.call('/v2/library/multi/manifests/broken', { method: 'PUT', body: missing, headers: { 'content-type': OCI_INDEX } });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as ErrorsBody;
    expect(body.errors[0]?.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(body.errors[0]?.message).toContain(sha256('no such child'));
  });

  it('accepts Docker schema 2 manifests and manifest lists', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const configDigest = await pushBlob(registry, 'library/docker', config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.length },
      layers: [],
    });
    const put = await registry.call('/v2/library/docker/manifests/v1', { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(put.status).toBe(201);
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256(manifest), size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
    });
    const putList = await registry.call('/v2/library/docker/manifests/list', { method: 'PUT', body: list, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.list.v2+json' } });
    expect(putList.status).toBe(201);
  });
});

describe('referrers', () => {
  it('answers OCI-Subject on a push with a subject and lists the referrer, filtered by artifactType', async () => {
    const subject = await pushImage(registry, 'library/signed', 'v1');
    const descriptor = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length };
    const signature = await registry.call('/v2/library/signed/manifests/' + 'sig', { method: 'HEAD' });
    expect(signature.status).toBe(404);
    const sbomType = 'application/vnd.example.sbom';
    const sigType = 'application/vnd.example.signature';
    // pushImage asserts 201; check the header with a direct push below.
    await pushImage(registry, 'library/signed', 'sbom', { subject: descriptor, artifactType: sbomType, seed: 'sbom' });
    const sigConfig = Buffer.from('{}');
    const configDigest = await pushBlob(registry, 'library/signed', sigConfig);
    const sigManifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: sigType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: 2 },
      layers: [],
      subject: descriptor,
      annotations: { 'org.example.signer': 'ci' },
    });
    const pushed = await registry.call(`/v2/library/signed/manifests/${sha256(sigManifest)}`, { method: 'PUT', body: sigManifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(pushed.status).toBe(201);
    expect(pushed.headers.get('oci-subject')).toBe(subject.digest);

    const all = await registry.call(`/v2/library/signed/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe(OCI_INDEX);
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    const index = (await all.json()) as { manifests: { artifactType: string; digest: string; annotations?: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.artifactType).sort()).toEqual([sbomType, sigType]);
    expect(index.manifests.find((m) => m.artifactType === sigType)?.annotations).toEqual({ 'org.example.signer': 'ci' });

    const filtered = await registry.call(`/v2/library/signed/referrers/${subject.digest}?artifactType=${encodeURIComponent(sigType)}`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    const onlySig = (await filtered.json()) as { manifests: { digest: string }[] };
    expect(onlySig.manifests.map((m) => m.digest)).toEqual([sha256(sigManifest)]);
  });

  it('answers an empty index for a subject nobody refers to', async () => {
    const response = await registry.call(`/v2/library/signed/referrers/${sha256('unknown subject')}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });
});

describe('tags and catalog', () => {
  it('pages through tags with n and last, linking to the next page', async () => {
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await pushImage(registry, 'library/paged', tag, { seed: 'same' });
    const first = await registry.call('/v2/library/paged/tags/list?n=2');
    expect(await first.json()).toEqual({ name: 'library/paged', tags: ['a', 'b'] });
    expect(first.headers.get('link')).toBe('</v2/library/paged/tags/list?n=2&last=b>; rel="next"');
    const second = await registry.call('/v2/library/paged/tags/list?n=2&last=b');
    expect(await second.json()).toEqual({ name: 'library/paged', tags: ['c', 'd'] });
    const third = await registry.call('/v2/library/paged/tags/list?n=2&last=d');
    expect(await third.json()).toEqual({ name: 'library/paged', tags: ['e'] });
    expect(third.headers.get('link')).toBeNull();
    const all = await registry.call('/v2/library/paged/tags/list');
    expect(((await all.json()) as { tags: string[] }).tags).toEqual(['a', 'b', 'c', 'd', 'e']);
    const none = await registry.call('/v2/library/paged/tags/list?n=0');
    expect(((await none.json()) as { tags: string[] }).tags).toEqual([]);
  });

  it('answers tags of an unknown repository with NAME_UNKNOWN', async () => {
    const response = await registry.call('/v2/library/nowhere/tags/list');
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NAME_UNKNOWN');
  });

  it('refuses a non-numeric n with PAGINATION_NUMBER_INVALID', async () => {
    const response = await registry.call('/v2/library/paged/tags/list?n=lots');
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('pages through the catalog', async () => {
    await pushImage(registry, 'zz/one', 'v1');
    await pushImage(registry, 'zz/two', 'v1');
    const first = await registry.call('/v2/_catalog?n=1&last=zz/');
    expect(await first.json()).toEqual({ repositories: ['zz/one'] });
    expect(first.headers.get('link')).toBe('</v2/_catalog?n=1&last=zz%2Fone>; rel="next"');
    const second = await registry.call('/v2/_catalog?n=1&last=zz%2Fone');
    expect(await second.json()).toEqual({ repositories: ['zz/two'] });
  });
});

describe('deletion', () => {
  it('deletes a tag by tag, leaving the manifest reachable by digest', async () => {
    const image = await pushImage(registry, 'library/deltag', 'old');
    const deleted = await registry.call('/v2/library/deltag/manifests/old', { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    expect((await registry.call('/v2/library/deltag/manifests/old')).status).toBe(404);
    expect((await registry.call(`/v2/library/deltag/manifests/${image.digest}`)).status).toBe(200);
    expect(((await (await registry.call('/v2/library/deltag/tags/list')).json()) as { tags: string[] }).tags).toEqual([]);
  });

  it('deletes a manifest by digest with its tags and emits artifact.deleted', async () => {
    const image = await pushImage(registry, 'library/delman', 'v1');
    const deleted = await registry.call(`/v2/library/delman/manifests/${image.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    expect((await registry.call(`/v2/library/delman/manifests/${image.digest}`)).status).toBe(404);
    expect((await registry.call('/v2/library/delman/manifests/v1')).status).toBe(404);
    await registry.role.events.settle();
    expect(events.find((event) => event.type === 'artifact.deleted' && event.digest === image.digest)).toMatchObject({ repository: 'library/delman', tag: 'v1' });
  });

  it('answers the delete of an unknown manifest with MANIFEST_UNKNOWN', async () => {
    const response = await registry.call(`/v2/library/delman/manifests/${sha256('never')}`, { method: 'DELETE' });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('MANIFEST_UNKNOWN');
  });
});

describe('bad names and references', () => {
  it.each([
    ['a single-component name', '/v2/app/tags/list'],
    ['upper-case letters', '/v2/Library/App/tags/list'],
    ['a dot-dot component', '/v2/library/../etc/tags/list'],
    ['a percent-encoded dot-dot', '/v2/library/%2e%2e/etc/tags/list'],
    ['a percent-encoded slash and dot-dot', '/v2/library%2f..%2fetc/app/tags/list'],
    ['a trailing separator', '/v2/library/app-/tags/list'],
  ])('refuses %s with NAME_INVALID', async (_name, path) => {
    const response = await rawRequest(registry, 'GET', path);
    expect(response.status).toBe(400);
    expect((JSON.parse(response.body) as ErrorsBody).errors[0]?.code).toBe('NAME_INVALID');
  });

  it.each([
    ['a malformed digest', '/v2/library/app/blobs/sha256:abc', 'DIGEST_INVALID'],
    ['an unsupported digest algorithm', `/v2/library/app/blobs/md5:${'a'.repeat(32)}`, 'DIGEST_INVALID'],
    ['an invalid tag', `/v2/library/app/manifests/${'-bad'}`, 'TAG_INVALID'],
  ])('refuses %s', async (_name, path, code) => {
    const response = await registry.call(path);
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe(code);
  });
});
