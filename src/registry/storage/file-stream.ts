import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BufferPool } from './buffer-pool.js';

/**
 * The bytes `[start, end]` of an open file as a Readable that owns the handle (closed when the
 * stream ends or is destroyed).
 *
 * Piped (which is how fastify sends a stream body), it reads the file itself into buffers from
 * `pool` and writes each chunk with a callback: the buffer goes back to the pool once the
 * destination has finished with it (for a TLS socket, once the encrypted record left for the
 * kernel), and the next chunk is read while the destination drains. A 100 MB blob GET then
 * allocates no new buffer at all (see ./buffer-pool.ts for why that matters). The rest of the
 * Readable contract holds: `end` is honoured, 'end' and 'close' are emitted, `destroy()` (as
 * fastify does when the client goes away) stops the copy, and a read error destroys the stream
 * with that error.
 *
 * Read any other way (async iteration, 'data'), it behaves as a plain file stream with a new
 * buffer per chunk.
 */
export class FileRangeStream extends Readable {
  readonly #handle: FileHandle;
  readonly #pool: BufferPool;
  readonly #end: number;
  #position: number;
  /** How the stream is consumed: not yet, through its own pipe, or through the Readable machinery. */
  #mode: 'idle' | 'copying' | 'reading' = 'idle';
  /** The read in progress, if any: the handle is closed only after it settled. */
  #reading: Promise<unknown> | undefined;

  /** `end` is inclusive, as in fs.createReadStream; an `end` before `start` gives an empty stream. */
  constructor(handle: FileHandle, range: { start: number; end: number }, pool: BufferPool) {
    super({ highWaterMark: pool.size });
    this.#handle = handle;
    this.#pool = pool;
    this.#position = range.start;
    this.#end = range.end + 1;
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    // Once the stream is being read otherwise, the ordinary pipe of what remains is the only safe one.
    if (this.#mode !== 'idle' || this.readableFlowing !== null) return super.pipe(destination, options);
    this.#mode = 'copying';
    void this.#copyTo(destination, options?.end ?? true);
    return destination;
  }

  override _read(): void {
    this.#mode = 'reading';
    if (this.#position >= this.#end) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(Math.min(this.#pool.size, this.#end - this.#position));
    this.#track(this.#readInto(buffer)).then(
      (bytes) => this.push(bytes === buffer.length ? buffer : buffer.subarray(0, bytes)),
      (error: unknown) => this.destroy(toError(error)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const closed = (this.#reading ?? Promise.resolve()).then(
      () => this.#handle.close(),
      () => this.#handle.close(),
    );
    closed.then(
      () => callback(error),
      (closeError: unknown) => callback(error ?? toError(closeError)),
    );
  }

  async #copyTo(destination: NodeJS.WritableStream, end: boolean): Promise<void> {
    let next = this.#readPooled();
    let stopped = false;
    try {
      while (next !== undefined) {
        const chunk = await next;
        // Read ahead: the next chunk comes from the disk while this one goes to the socket.
        next = this.destroyed ? undefined : this.#readPooled();
        if (this.destroyed || isDestroyed(destination)) {
          this.#pool.give(chunk.buffer);
          stopped = true;
          break;
        }
        const view = chunk.bytes === chunk.buffer.length ? chunk.buffer : chunk.buffer.subarray(0, chunk.bytes);
        const buffer = chunk.buffer;
        if (!destination.write(view, () => this.#pool.give(buffer))) await this.#drained(destination);
      }
    } catch (error) {
      this.destroy(toError(error));
      return;
    } finally {
      // A read-ahead still running when the copy stopped early: let it finish, keep its buffer.
      await next?.then(
        (chunk) => this.#pool.give(chunk.buffer),
        () => undefined,
      );
    }
    if (this.destroyed) return;
    if (stopped) {
      // The destination closed before everything was sent: this stream did not complete either.
      this.destroy();
      return;
    }
    if (end) destination.end();
    // Ends the Readable side too ('end', then 'close' through autoDestroy, which closes the handle).
    this.push(null);
    this.resume();
  }

  /** Reads the next chunk into a pooled buffer; undefined once everything was read. */
  #readPooled(): Promise<{ buffer: Buffer; bytes: number }> | undefined {
    if (this.#position >= this.#end) return undefined;
    const buffer = this.#pool.take(this.#end - this.#position);
    const read = this.#track(
      this.#readInto(buffer).then(
        (bytes) => ({ buffer, bytes }),
        (error: unknown) => {
          this.#pool.give(buffer);
          throw error;
        },
      ),
    );
    // A read-ahead may fail while the copy waits for 'drain': its error is taken up when the copy
    // awaits it, so it is not an unhandled rejection meanwhile.
    read.catch(() => undefined);
    return read;
  }

  /** Fills `buffer` (or what is left of the range) from the current position; advances it. */
  async #readInto(buffer: Buffer): Promise<number> {
    const length = Math.min(buffer.length, this.#end - this.#position);
    const position = this.#position;
    this.#position += length;
    const { bytesRead } = await this.#handle.read(buffer, 0, length, position);
    if (bytesRead < length) {
      throw new Error(`file ended at byte ${position + bytesRead}, before the end of the range at byte ${this.#end} (truncated while being read?)`);
    }
    return bytesRead;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#reading = promise;
    return promise;
  }

  /** Resolves on the destination's 'drain', or when either side closes (the copy then stops). */
  #drained(destination: NodeJS.WritableStream): Promise<void> {
    return new Promise((resolve) => {
      // Already closed: neither event would come.
      if (this.destroyed || isDestroyed(destination)) {
        resolve();
        return;
      }
      const done = () => {
        destination.removeListener('drain', done);
        destination.removeListener('close', done);
        this.removeListener('close', done);
        resolve();
      };
      destination.once('drain', done);
      destination.once('close', done);
      this.once('close', done);
    });
  }
}

function isDestroyed(stream: NodeJS.WritableStream): boolean {
  return 'destroyed' in stream && stream.destroyed === true;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
