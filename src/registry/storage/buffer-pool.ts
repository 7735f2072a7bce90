/**
 * Equal-sized buffers handed out and taken back, so that streaming large files reuses a few
 * buffers instead of allocating one per chunk.
 *
 * Why it matters: every buffer Node allocates for a chunk is memory outside the V8 heap that V8
 * must account for, and sustained allocation of it (100 × 1 MiB for one 100 MB blob GET) makes V8
 * collect garbage in its name. Once a process has received large uploads, those collections are
 * full mark-compacts of the whole heap, several per 100 MB sent: measured on the blob GET path, they
 * tripled the registry's CPU time per byte served.
 */
export class BufferPool {
  /** Length of every pooled buffer. */
  readonly size: number;
  readonly #maxIdle: number;
  readonly #idle: Buffer[] = [];

  /** `maxIdle` bounds the memory kept while nothing streams: `size × maxIdle` bytes. */
  constructor(size: number, maxIdle: number) {
    this.size = size;
    this.#maxIdle = maxIdle;
  }

  /**
   * A buffer of at least `length` bytes with arbitrary contents: an idle pooled buffer when there
   * is one, else a new one — of the pool's size when `length` reaches it, else of exactly `length`
   * bytes (a short read does not earn a buffer of the full size). The caller owns it until `give`.
   */
  take(length: number): Buffer {
    const idle = this.#idle.pop();
    if (idle) return idle;
    // Never from Node's shared slab (Buffer.allocUnsafe): a pooled buffer is rewritten later, so it
    // must not share memory with anything else.
    return Buffer.allocUnsafeSlow(length >= this.size ? this.size : length);
  }

  /**
   * Takes `buffer` back for reuse. Only call it once nothing can read the buffer any more (for a
   * write, once its callback ran). Buffers of another length, and any beyond `maxIdle`, are left to
   * the garbage collector.
   */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.#idle.length < this.#maxIdle) this.#idle.push(buffer);
  }

  /** Buffers currently idle (for tests and diagnostics). */
  get idle(): number {
    return this.#idle.length;
  }
}
