import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * Builds small (or, for benchmarks, large) OCI image layouts on disk that `skopeo copy oci:DIR:TAG …`
 * can push. Layers are real tar archives, the config carries the diff ids and any labels asked for
 * (the scanner's tests label images `portcullis.test/trivy-report=<name>`).
 */
export interface LayoutOptions {
  /** Tag in index.json (`org.opencontainers.image.ref.name`). Default `latest`. */
  tag?: string;
  /** Config labels (`config.Labels`). */
  labels?: Record<string, string>;
  /** Files of the single layer (path → content). Default one small file that makes the image unique. */
  files?: Record<string, string | Buffer>;
  /** Gzip the layer (default true); large benchmark layers are stored uncompressed. */
  compress?: boolean;
  architecture?: string;
  os?: string;
  /** Manifest annotations. */
  annotations?: Record<string, string>;
}

export interface Layout {
  dir: string;
  tag: string;
  /** `oci:DIR:TAG` for skopeo. */
  reference: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  manifest: Buffer;
}

const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

function sha256(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** A ustar header block for a regular file. */
function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write(`${Math.floor(Date.UTC(2024, 0, 1) / 1000).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write('0', 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}

function tarOf(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    parts.push(tarHeader(name, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function writeBlob(dir: string, content: Buffer): string {
  const digest = sha256(content);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), content);
  return digest;
}

function finish(dir: string, options: LayoutOptions, layer: { digest: string; size: number; diffId: string; mediaType: string }): Layout {
  const tag = options.tag ?? 'latest';
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: options.architecture ?? 'amd64',
      os: options.os ?? 'linux',
      config: { Labels: options.labels ?? {}, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'portcullis test layout' }],
    }),
  );
  const configDigest = writeBlob(dir, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      ...(options.annotations ? { annotations: options.annotations } : {}),
    }),
  );
  const manifestDigest = writeBlob(dir, manifest);
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { dir, tag, reference: `oci:${dir}:${tag}`, manifestDigest, configDigest, layerDigest: layer.digest, manifest };
}

function prepare(dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Writes an OCI image layout with one layer holding `files` into `dir` (created). */
export function buildOciLayout(dir: string, options: LayoutOptions = {}): Layout {
  prepare(dir);
  const tar = tarOf(options.files ?? { 'etc/portcullis-test': `${randomBytes(16).toString('hex')}\n` });
  const compress = options.compress ?? true;
  const layer = compress ? gzipSync(tar) : tar;
  const digest = writeBlob(dir, layer);
  return finish(dir, options, { digest, size: layer.length, diffId: sha256(tar), mediaType: compress ? LAYER_GZIP : LAYER_TAR });
}

/**
 * Writes an OCI layout whose single uncompressed layer is a tar of one file of `size` random bytes,
 * streamed to disk (for benchmarks: nothing of that size is held in memory).
 */
export async function buildLargeOciLayout(dir: string, size: number, options: LayoutOptions = {}): Promise<Layout> {
  prepare(dir);
  const temporary = join(dir, 'blobs', 'layer.tmp');
  const hash = createHash('sha256');
  const out = createWriteStream(temporary);
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      hash.update(chunk);
      out.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
  await write(tarHeader('data.bin', size));
  const chunkSize = 4 * 1024 * 1024;
  for (let written = 0; written < size; written += chunkSize) await write(randomBytes(Math.min(chunkSize, size - written)));
  await write(Buffer.alloc((512 - (size % 512)) % 512));
  await write(Buffer.alloc(1024));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  const digest = `sha256:${hash.digest('hex')}`;
  renameSync(temporary, join(dir, 'blobs', 'sha256', digest.slice(7)));
  const total = 512 + size + ((512 - (size % 512)) % 512) + 1024;
  return finish(dir, { ...options, compress: false }, { digest, size: total, diffId: digest, mediaType: LAYER_TAR });
}
