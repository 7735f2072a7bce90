import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate as truncateFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { describeError } from '../../errors.js';
import { BufferPool } from './buffer-pool.js';
import { StorageDriverError, pathComponents, type FileInfo, type StorageDriver } from './driver.js';
import { FileRangeStream } from './file-stream.js';

const NAME = 'filesystem';
/** Read in large chunks: fewer syscalls and fewer, larger TLS records on blob GET. */
const READ_CHUNK = 1024 * 1024;
/** Read buffers kept while no blob streams (READ_CHUNK each); a streaming GET holds two or three. */
const IDLE_READ_BUFFERS = 8;
/** Bytes gathered before one writev on append. */
const WRITE_BATCH = 1024 * 1024;
/** Bytes written after which a background fdatasync starts during a long append. */
const BACKGROUND_SYNC = 32 * 1024 * 1024;

function errno(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/**
 * The local filesystem driver: every path lives under `root`. Durability follows the contract:
 * appends and content writes are fsynced, renames are followed by a sync of the directory.
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = NAME;
  readonly #root: string;
  /** Read buffers shared by every reader of this driver (see ./file-stream.ts). */
  readonly #readBuffers = new BufferPool(READ_CHUNK, IDLE_READ_BUFFERS);

  constructor(root: string) {
    this.#root = root;
  }

  #resolve(path: string): string {
    return join(this.#root, ...pathComponents(NAME, path));
  }

  #wrap(path: string, action: string, error: unknown): StorageDriverError {
    if (error instanceof StorageDriverError) return error;
    if (errno(error) === 'ENOENT') return new StorageDriverError(NAME, 'not-found', path, 'no such file', { cause: error });
    return new StorageDriverError(NAME, 'io', path, `${action}: ${describeError(error)}`, { cause: error });
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const file = this.#resolve(path);
    try {
      const info = await stat(file);
      return info.isFile() ? { path, size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
      throw this.#wrap(path, 'stat', error);
    }
  }

  async reader(path: string, range?: { start: number; end?: number }): Promise<Readable> {
    const file = this.#resolve(path);
    // Open first so that absence is reported here, not as a stream error after headers went out.
    let handle;
    let size;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      throw this.#wrap(path, 'open', error);
    }
    try {
      size = (await handle.stat()).size;
    } catch (error) {
      await handle.close();
      throw this.#wrap(path, 'stat', error);
    }
    // As fs.createReadStream: an end past the last byte stops at the last byte.
    const end = Math.min(range?.end ?? size - 1, size - 1);
    return new FileRangeStream(handle, { start: range?.start ?? 0, end }, this.#readBuffers);
  }

  async append(path: string, source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<number> {
    const file = this.#resolve(path);
    try {
      await mkdir(dirname(file), { recursive: true });
      const handle = await open(file, 'a');
      try {
        // Chunks arrive in TLS-record sizes (16 KiB); write them in batches with one writev each,
        // and keep receiving the next batch while the previous one is written (double buffering:
        // at most two batches are held).
        let batch: Buffer[] = [];
        let batchBytes = 0;
        let writing: Promise<void> = Promise.resolve();
        let unsynced = 0;
        let syncing: Promise<void> | undefined;
        let syncError: unknown;
        const flush = async () => {
          const buffers = batch;
          const bytes = batchBytes;
          batch = [];
          batchBytes = 0;
          await writing;
          writing = writeAll(handle, buffers).then(() => {
            unsynced += bytes;
            // Flush to disk in the background while the rest streams in, so that the final
            // fsync of a large blob has little left to do.
            if (unsynced >= BACKGROUND_SYNC && syncing === undefined) {
              unsynced = 0;
              // A failed background sync is kept and rethrown below: Linux reports a writeback
              // error to an fd once, so the final fsync could succeed after the data was lost.
              syncing = handle
                .datasync()
                .catch((error: unknown) => {
                  syncError ??= error;
                })
                .finally(() => {
                  syncing = undefined;
                });
            }
          });
          // Observed here so that a failed write is not an unhandled rejection while the next
          // batch is still arriving; it is rethrown by the next `await writing`.
          writing.catch(() => undefined);
        };
        try {
          for await (const chunk of source) {
            signal?.throwIfAborted();
            batch.push(chunk);
            batchBytes += chunk.length;
            if (batchBytes >= WRITE_BATCH) await flush();
          }
        } finally {
          // What arrived before a failing source is kept too (the contract); and the file is never
          // closed under a write in flight. A write error is rethrown below when the source was fine.
          if (batchBytes > 0) await flush().catch(() => undefined);
          await writing.catch(() => undefined);
          await syncing?.catch(() => undefined);
        }
        await writing;
        await syncing;
        if (syncError !== undefined) throw syncError;
        await handle.sync();
        return (await handle.stat()).size;
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw this.#wrap(path, 'append', error);
    }
  }

  async truncate(path: string, size: number): Promise<void> {
    try {
      await truncateFile(this.#resolve(path), size);
    } catch (error) {
      throw this.#wrap(path, 'truncate', error);
    }
  }

  async move(source: string, destination: string): Promise<void> {
    const from = this.#resolve(source);
    const to = this.#resolve(destination);
    try {
      // Checked first so that a missing source leaves no destination directory behind.
      await stat(from);
      await mkdir(dirname(to), { recursive: true });
      await rename(from, to);
      await syncDirectory(dirname(to));
    } catch (error) {
      throw this.#wrap(source, `move to ${destination}`, error);
    }
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    const file = this.#resolve(path);
    const temporary = `${file}.tmp-${randomUUID()}`;
    try {
      await mkdir(dirname(file), { recursive: true });
      const handle = await open(temporary, 'w');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, file);
      await syncDirectory(dirname(file));
    } catch (error) {
      await rm(temporary, { force: true });
      throw this.#wrap(path, 'write', error);
    }
  }

  async getContent(path: string): Promise<Buffer> {
    try {
      return await readFile(this.#resolve(path));
    } catch (error) {
      throw this.#wrap(path, 'read', error);
    }
  }

  async delete(path: string): Promise<void> {
    try {
      await rm(this.#resolve(path), { recursive: true, force: true });
    } catch (error) {
      throw this.#wrap(path, 'delete', error);
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      return (await readdir(this.#resolve(path))).sort();
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return [];
      throw this.#wrap(path, 'list', error);
    }
  }
}

/** Writes every byte of `buffers` (writev may write less than asked). */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending);
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) skip -= buffer.length;
      else {
        rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
        skip = 0;
      }
    }
    pending = rest;
  }
}

/** A rename is durable only once its directory entry is on disk. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
