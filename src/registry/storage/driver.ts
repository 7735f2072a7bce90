import type { Readable } from 'node:stream';

/**
 * The storage driver contract: a small path-addressed file store under which the registry keeps
 * blobs and upload sessions (layout in ./paths.ts). Modelled on distribution's `StorageDriver`:
 * drivers know nothing of digests or repositories; the blob store above them does.
 *
 * Paths are `/`-separated, start with `/`, and never contain `.` or `..` components; a driver
 * rejects any other path with a StorageDriverError of kind `invalid-path`. Every failure a driver
 * reports is a StorageDriverError that carries the driver's name.
 */
export interface StorageDriver {
  /** A short name for logs and errors (`filesystem`). */
  readonly name: string;

  /** Size and modification time of the file at `path`; undefined when there is none (or it is a directory). */
  stat(path: string): Promise<FileInfo | undefined>;

  /**
   * A stream of the bytes `[start, end]` (inclusive, `end` defaulting to the last byte) of the
   * file at `path`. Throws `not-found` when the file is absent. The caller must consume or destroy
   * the stream.
   */
  reader(path: string, range?: { start: number; end?: number }): Promise<Readable>;

  /**
   * Appends every byte of `source` to the file at `path` (created with its parents when absent) and
   * flushes it to stable storage before resolving with the file's new size. Nothing is buffered
   * beyond one chunk. When `source` fails or `signal` aborts, the bytes written so far stay and the
   * error is rethrown: the caller decides whether to truncate, resume or discard.
   */
  append(path: string, source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<number>;

  /** Shortens the file at `path` to `size` bytes. Throws `not-found` when absent. */
  truncate(path: string, size: number): Promise<void>;

  /**
   * Moves the file at `source` to `destination` atomically and durably (rename, then the directory
   * is synced): a reader sees either nothing or the whole file. Replaces `destination` when present.
   * Throws `not-found` when `source` is absent.
   */
  move(source: string, destination: string): Promise<void>;

  /** Writes `content` to `path` atomically (temporary file, fsync, rename). Idempotent. */
  putContent(path: string, content: Buffer): Promise<void>;

  /** The whole file at `path` (only for small files). Throws `not-found` when absent. */
  getContent(path: string): Promise<Buffer>;

  /** Removes the file or directory tree at `path`. Idempotent: absence is not an error. */
  delete(path: string): Promise<void>;

  /** The names of the direct children of the directory at `path`, sorted; empty when absent. */
  list(path: string): Promise<string[]>;
}

export interface FileInfo {
  path: string;
  size: number;
  modifiedAt: Date;
}

export type StorageErrorKind = 'not-found' | 'invalid-path' | 'io';

/** The one error a driver throws; `driver` names the backend so logs say where it came from. */
export class StorageDriverError extends Error {
  readonly driver: string;
  readonly path: string;
  readonly kind: StorageErrorKind;

  constructor(driver: string, kind: StorageErrorKind, path: string, message: string, options?: { cause?: unknown }) {
    super(`${driver}: ${path}: ${message}`, options);
    this.name = 'StorageDriverError';
    this.driver = driver;
    this.kind = kind;
    this.path = path;
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof StorageDriverError && error.kind === 'not-found';
}

/** Checks the path grammar every driver shares; returns the components. */
export function pathComponents(driver: string, path: string): string[] {
  if (!path.startsWith('/')) throw new StorageDriverError(driver, 'invalid-path', path, 'expected an absolute path starting with "/"');
  const components = path.split('/').slice(1);
  if (path === '/') return [];
  for (const component of components) {
    if (component === '' || component === '.' || component === '..' || component.includes('\0')) {
      throw new StorageDriverError(driver, 'invalid-path', path, `invalid component "${component}"`);
    }
  }
  return components;
}
