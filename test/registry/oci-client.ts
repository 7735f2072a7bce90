import { createHash } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { expect } from 'vitest';
import type { TestRegistry } from '../helpers/registry.js';

/** Small helpers to drive the OCI API by hand in conformance-style tests. */
export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

export interface ErrorsBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

export async function errorCode(response: { json(): Promise<unknown> }): Promise<string> {
  const body = (await response.json()) as ErrorsBody;
  expect(body.errors[0]?.message.length).toBeGreaterThan(0);
  return body.errors[0]?.code ?? '';
}

/** Pushes `content` as a blob of `repository` with a single POST; returns its digest. */
export async function pushBlob(registry: TestRegistry, repository: string, content: Buffer | string): Promise<string> {
  const digest = sha256(content);
  const response = await registry.call(`/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: content,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(response.status, await response.text()).toBe(201);
  return digest;
}

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  configDigest: string;
  layerDigest: string;
}

/** Pushes a minimal OCI image (config + one layer) to `repository:tag`. */
export async function pushImage(
  registry: TestRegistry,
  repository: string,
  tag: string,
  extra: { subject?: { digest: string; size: number; mediaType: string }; artifactType?: string; configMediaType?: string; seed?: string } = {},
): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: extra.seed ?? tag, rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = Buffer.from(`layer of ${repository}:${tag}:${extra.seed ?? ''}`);
  const configDigest = await pushBlob(registry, repository, config);
  const layerDigest = await pushBlob(registry, repository, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
      config: { mediaType: extra.configMediaType ?? 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      ...(extra.subject ? { subject: extra.subject } : {}),
    }),
  );
  const response = await registry.call(`/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(response.status, await response.text()).toBe(201);
  return { digest: sha256(manifest), manifest, configDigest, layerDigest };
}

/**
 * A request whose path is sent exactly as given (fetch would resolve `..` and `%2e%2e` before
 * sending, which would hide what the server does with them).
 */
export function rawRequest(registry: TestRegistry, method: string, path: string): Promise<{ status: number; body: string }> {
  const [host, port] = registry.host.split(':');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host, port: Number(port), method, path, ca: registry.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
