import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PortcullisError } from '../../errors.js';
import type { RegistryMetadata } from '../metadata/store.js';
import { Digester, algorithmOf, type DigestAlgorithm } from '../oci/digest.js';
import { isNotFound, type StorageDriver } from './driver.js';
import { UPLOADS_ROOT, blobDataPath, uploadDataPath, uploadDirPath } from './paths.js';

/** The running hash of an upload, valid while `offset` equals the bytes on disk. */
interface HashState {
  digester: Digester;
  offset: number;
}

export interface UploadStatus {
  id: string;
  repository: string;
  /** Bytes received so far (the upload's data file is the source of truth). */
  size: number;
}

/**
 * Content-addressed blobs on top of a storage driver and the metadata store. Upload bytes go to
 * `/uploads/<id>/data`; a blob becomes visible only after its digest was verified, the file was
 * renamed to its content address and the link was written to the database — in that order, so a
 * crash at any point leaves no visible partial blob. Hashes are computed while bytes stream in;
 * after a restart the hash of an interrupted upload is recomputed from disk once.
 */
export class BlobStore {
  readonly #driver: StorageDriver;
  readonly #metadata: RegistryMetadata;
  readonly #hashes = new Map<string, HashState>();

  constructor(driver: StorageDriver, metadata: RegistryMetadata) {
    this.#driver = driver;
    this.#metadata = metadata;
  }

  /** Removes upload files whose session is unknown to the database (left by a crash between steps). */
  async removeOrphanUploads(): Promise<number> {
    const known = new Set(await this.#metadata.uploadIds());
    let removed = 0;
    for (const id of await this.#driver.list(UPLOADS_ROOT)) {
      if (!known.has(id)) {
        await this.#driver.delete(uploadDirPath(id));
        removed += 1;
      }
    }
    return removed;
  }

  /** Size of the blob when it is linked to `repository`, else undefined. */
  async stat(repository: string, digest: string): Promise<number | undefined> {
    return this.#metadata.blobInRepository(repository, digest);
  }

  /** Streams the committed blob `digest`; throws REGISTRY_BLOB_UNKNOWN when its content is missing. */
  async open(digest: string, range?: { start: number; end: number }): Promise<Readable> {
    try {
      return await this.#driver.reader(blobDataPath(digest), range);
    } catch (error) {
      if (isNotFound(error)) throw new PortcullisError('REGISTRY_BLOB_UNKNOWN', `blob ${digest}: content missing from storage`, { cause: error });
      throw error;
    }
  }

  /** The whole committed blob (manifests only: bounded by the manifest size limit). */
  async read(digest: string): Promise<Buffer> {
    try {
      return await this.#driver.getContent(blobDataPath(digest));
    } catch (error) {
      if (isNotFound(error)) throw new PortcullisError('REGISTRY_MANIFEST_UNKNOWN', `manifest ${digest}: content missing from storage`, { cause: error });
      throw error;
    }
  }

  /** Stores small verified content (a manifest) under its digest and links it to `repository`. */
  async putContent(repository: string, digest: string, content: Buffer): Promise<void> {
    if (!(await this.#driver.stat(blobDataPath(digest)))) await this.#driver.putContent(blobDataPath(digest), content);
    await this.#metadata.linkBlob(repository, digest, content.length);
  }

  /** Links an existing blob into another repository (cross-repository mount). */
  async mount(repository: string, digest: string, size: number): Promise<void> {
    await this.#metadata.linkBlob(repository, digest, size);
  }

  async unlink(repository: string, digest: string): Promise<boolean> {
    return this.#metadata.unlinkBlob(repository, digest);
  }

  async startUpload(repository: string): Promise<UploadStatus> {
    const id = randomUUID();
    await this.#metadata.createUpload(id, repository);
    this.#hashes.set(id, { digester: new Digester('sha256'), offset: 0 });
    return { id, repository, size: 0 };
  }

  /** The upload `id` of `repository`; throws REGISTRY_BLOB_UPLOAD_UNKNOWN when there is none. */
  async upload(repository: string, id: string): Promise<UploadStatus> {
    const session = await this.#metadata.upload(id);
    if (!session || session.repository !== repository) {
      throw new PortcullisError('REGISTRY_BLOB_UPLOAD_UNKNOWN', `upload ${id} is not known in repository ${repository}`);
    }
    const info = await this.#driver.stat(uploadDataPath(id));
    return { id, repository, size: info?.size ?? 0 };
  }

  /**
   * Appends a chunk. `start` (from Content-Range) must equal the bytes received so far, else
   * REGISTRY_RANGE_INVALID (416). `length` (Content-Length) is checked against what arrived. On a
   * broken stream the upload is cut back to where the chunk began, so the client can resend it.
   */
  async append(upload: UploadStatus, source: AsyncIterable<Buffer>, expected: { start?: number; length?: number } = {}): Promise<UploadStatus> {
    if (expected.start !== undefined && expected.start !== upload.size) {
      throw new PortcullisError('REGISTRY_RANGE_INVALID', `upload ${upload.id}: chunk starts at ${expected.start}, expected ${upload.size} (bytes received so far)`, {
        detail: { expectedStart: upload.size, got: expected.start },
      });
    }
    const state = await this.#hashState(upload.id, upload.size, 'sha256');
    const hashed = hashing(source, state.digester);
    let size: number;
    try {
      size = await this.#driver.append(uploadDataPath(upload.id), hashed);
    } catch (error) {
      // The running hash saw bytes that are now cut away: forget it and rehash on next use.
      this.#hashes.delete(upload.id);
      await this.#driver.truncate(uploadDataPath(upload.id), upload.size).catch(() => undefined);
      throw error;
    }
    state.offset = size;
    if (expected.length !== undefined && size - upload.size !== expected.length) {
      this.#hashes.delete(upload.id);
      await this.#driver.truncate(uploadDataPath(upload.id), upload.size);
      throw new PortcullisError('REGISTRY_SIZE_INVALID', `upload ${upload.id}: Content-Length was ${expected.length}, received ${size - upload.size} bytes`);
    }
    return { ...upload, size };
  }

  /**
   * Completes an upload: verifies that the received bytes hash to `digest`, moves them to the
   * blob's address and links the blob to the repository. On a mismatch the upload is discarded and
   * REGISTRY_DIGEST_INVALID is thrown; nothing is stored.
   */
  async commit(upload: UploadStatus, digest: string): Promise<number> {
    const algorithm = algorithmOf(digest);
    const state = await this.#hashState(upload.id, upload.size, algorithm);
    const actual = state.digester.digest();
    this.#hashes.delete(upload.id);
    if (actual !== digest) {
      await this.cancel(upload.id);
      throw new PortcullisError('REGISTRY_DIGEST_INVALID', `upload ${upload.id}: content digest is ${actual}, the request said ${digest}; nothing was stored`, {
        detail: { expected: digest, actual },
      });
    }
    const existing = await this.#driver.stat(blobDataPath(digest));
    if (existing) await this.#driver.delete(uploadDirPath(upload.id));
    else {
      await this.#driver.move(uploadDataPath(upload.id), blobDataPath(digest));
      await this.#driver.delete(uploadDirPath(upload.id));
    }
    await this.#metadata.linkBlob(upload.repository, digest, upload.size);
    await this.#metadata.deleteUpload(upload.id);
    return upload.size;
  }

  /** Discards an upload session and its bytes. Idempotent. */
  async cancel(id: string): Promise<void> {
    this.#hashes.delete(id);
    await this.#metadata.deleteUpload(id);
    await this.#driver.delete(uploadDirPath(id));
  }

  /** The running hash for `id` at `offset`, recomputed from disk when unknown or stale. */
  async #hashState(id: string, offset: number, algorithm: DigestAlgorithm): Promise<HashState> {
    const known = this.#hashes.get(id);
    if (known && known.offset === offset && known.digester.algorithm === algorithm) return known;
    const digester = new Digester(algorithm);
    if (offset > 0) {
      const stream = await this.#driver.reader(uploadDataPath(id), { start: 0, end: offset - 1 });
      for await (const chunk of stream) digester.update(chunk as Buffer);
    }
    const state = { digester, offset };
    this.#hashes.set(id, state);
    return state;
  }
}

async function* hashing(source: AsyncIterable<Buffer>, digester: Digester): AsyncIterable<Buffer> {
  for await (const chunk of source) {
    digester.update(chunk);
    yield chunk;
  }
}
