import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * A minimal OCI image layout writer (image-spec v1.1 "image-layout") for tests that push with
 * `skopeo copy oci:DIR:TAG docker://…`: one image (or a Helm-chart-like artifact) per layout,
 * one small layer, config labels as given. The registry engineer's test/helpers/oci-layout.ts
 * supersedes this once it exists; this one only needs what the stand-in tests need.
 */
export interface LayoutImage {
  /** Config labels (`portcullis.test/trivy-report=photon-30`). */
  labels?: Record<string, string>;
  /** Content of the one file in the one layer; makes the digest unique. */
  content?: string;
  /** Config media type; an image config unless given (a Helm chart: application/vnd.cncf.helm.config.v1+json). */
  configMediaType?: string;
}

export interface WrittenLayout {
  dir: string;
  tag: string;
  /** Digest of the manifest (what the registry serves for the tag). */
  digest: string;
  configDigest: string;
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A ustar archive holding one regular file. */
function tarWithFile(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write(`${'0'.padStart(11, '0')}\0`, 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024)]);
}

export function writeOciLayout(dir: string, tag: string, image: LayoutImage = {}): WrittenLayout {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const writeBlob = (data: Buffer | string) => {
    const digest = sha256(data);
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), data);
    return { digest, size: Buffer.byteLength(data) };
  };
  const isImage = image.configMediaType === undefined || image.configMediaType === 'application/vnd.oci.image.config.v1+json';
  const tar = tarWithFile('hello.txt', image.content ?? `hello from ${tag}\n`);
  const layer = writeBlob(gzipSync(tar));
  const config = isImage
    ? JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2026-01-01T00:00:00Z',
        config: { Labels: image.labels ?? {} },
        rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      })
    : JSON.stringify({ name: tag, version: '0.1.0', apiVersion: 'v2' });
  const configBlob = writeBlob(config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: image.configMediaType ?? 'application/vnd.oci.image.config.v1+json', ...configBlob },
    layers: [{ mediaType: isImage ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', ...layer }],
  });
  const manifestBlob = writeBlob(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifestBlob, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { dir, tag, digest: manifestBlob.digest, configDigest: configBlob.digest };
}
