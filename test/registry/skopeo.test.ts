import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout, type Layout } from '../helpers/oci-layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, skopeoOk } from '../helpers/skopeo.js';
import { tempDir } from '../helpers/tmp.js';

let registry: TestRegistry;
let work: { path: string; remove(): void };
let layout: Layout;

beforeAll(async () => {
  registry = await startTestRegistry();
  work = tempDir('portcullis-skopeo-');
  layout = buildOciLayout(join(work.path, 'image'), { labels: { 'portcullis.test/trivy-report': 'alpine' } });
});

afterAll(async () => {
  await registry.close();
  work.remove();
});

const tls = () => ['--dest-cert-dir', registry.certDir];
const src = () => ['--src-cert-dir', registry.certDir];
const certs = () => ['--cert-dir', registry.certDir];

describe('the registry with the real skopeo over TLS', () => {
  it('accepts a push from an OCI layout and reports the same manifest digest', async () => {
    await skopeoOk(['copy', ...tls(), layout.reference, `docker://${registry.host}/library/app:1.0`]);
    const inspected = JSON.parse(await skopeoOk(['inspect', ...certs(), `docker://${registry.host}/library/app:1.0`])) as { Digest: string; Labels: Record<string, string> };
    expect(inspected.Digest).toBe(layout.manifestDigest);
    expect(inspected.Labels['portcullis.test/trivy-report']).toBe('alpine');
  });

  it('copies between repositories and projects, mounting the layer instead of re-sending it', async () => {
    await skopeoOk(['copy', ...src(), ...tls(), `docker://${registry.host}/library/app:1.0`, `docker://${registry.host}/library/other/app:copy`]);
    const copied = await skopeo(['--debug', 'copy', ...src(), ...tls(), `docker://${registry.host}/library/app:1.0`, `docker://${registry.host}/team/app:copy`]);
    expect(copied.code, copied.stderr).toBe(0);
    // skopeo remembers where it pushed the layer and asks for a cross-repository mount, which
    // succeeds: the layer's bytes are not uploaded again.
    const layer = encodeURIComponent(layout.layerDigest);
    expect(copied.stderr).toMatch(new RegExp(`POST https://${registry.host}/v2/team/app/blobs/uploads/\\?from=library%2F[A-Za-z%0-9]+&mount=${layer}`));
    expect(copied.stderr).toContain('mount OK');
    expect(copied.stderr).not.toContain(`?digest=${layer}`);
    for (const target of ['library/other/app:copy', 'team/app:copy']) {
      const inspected = JSON.parse(await skopeoOk(['inspect', ...certs(), `docker://${registry.host}/${target}`])) as { Digest: string };
      expect(inspected.Digest).toBe(layout.manifestDigest);
    }
  });

  it('lists tags', async () => {
    await skopeoOk(['copy', ...src(), ...tls(), `docker://${registry.host}/library/app:1.0`, `docker://${registry.host}/library/app:latest`]);
    const listed = JSON.parse(await skopeoOk(['list-tags', ...certs(), `docker://${registry.host}/library/app`])) as { Tags: string[] };
    expect(listed.Tags).toEqual(['1.0', 'latest']);
  });

  it('pulls back into an OCI layout with identical manifest and blob bytes', async () => {
    const back = join(work.path, 'back');
    await skopeoOk(['copy', ...src(), `docker://${registry.host}/library/app:1.0`, `oci:${back}:pulled`]);
    const index = JSON.parse(readFileSync(join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(layout.manifestDigest);
    for (const digest of [layout.manifestDigest, layout.configDigest, layout.layerDigest]) {
      const bytes = readFileSync(join(back, 'blobs', 'sha256', digest.slice(7)));
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
    }
  });

  it('deletes an image by tag through skopeo, after which inspect fails', async () => {
    await skopeoOk(['delete', ...certs(), `docker://${registry.host}/team/app:copy`]);
    const after = await skopeo(['inspect', ...certs(), `docker://${registry.host}/team/app:copy`]);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/manifest unknown|not found/i);
  });
});
