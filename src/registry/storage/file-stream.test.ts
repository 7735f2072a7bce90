import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.js';
import { BufferPool } from './buffer-pool.js';
import { FileRangeStream } from './file-stream.js';

const CHUNK = 64;
const dirs: { remove(): void }[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) dir.remove();
});

async function fileOf(content: Buffer): Promise<FileHandle> {
  const dir = tempDir('portcullis-file-stream-');
  dirs.push(dir);
  const path = join(dir.path, 'data');
  writeFileSync(path, content);
  return open(path, 'r');
}

/**
 * A destination like a slow socket: it finishes each write on a later turn, accepts several chunks
 * before asking to drain, and checks that no chunk was rewritten before it said it was done with it.
 */
class SlowSink extends Writable {
  readonly received: Buffer[] = [];
  readonly buffersSeen = new Set<ArrayBufferLike>();
  rewrittenEarly = 0;

  readonly #onWrite: ((sink: SlowSink) => void) | undefined;

  constructor(options: { highWaterMark?: number; onWrite?: (sink: SlowSink) => void } = {}) {
    super({ highWaterMark: options.highWaterMark ?? CHUNK * 8 });
    this.#onWrite = options.onWrite;
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error | null) => void): void {
    const copy = Buffer.from(chunk);
    this.received.push(copy);
    this.buffersSeen.add(chunk.buffer);
    this.#onWrite?.(this);
    setTimeout(() => {
      if (!chunk.equals(copy)) this.rewrittenEarly += 1;
      callback();
    }, 1);
  }
}

describe('FileRangeStream piped (the blob GET path)', () => {
  it('sends the range through a few reused buffers, never rewriting one before its write finished', async () => {
    const content = randomBytes(CHUNK * 40 + 17);
    const handle = await fileOf(content);
    const pool = new BufferPool(CHUNK, 16);
    const sink = new SlowSink();
    const stream = new FileRangeStream(handle, { start: 5, end: content.length - 1 }, pool);
    const ended = new Promise((resolve) => stream.once('end', resolve));
    await pipeline(stream, sink);
    await ended;
    expect(Buffer.concat(sink.received)).toEqual(content.subarray(5));
    expect(sink.rewrittenEarly).toBe(0);
    // The chunks the destination holds before it asks to drain, one read ahead, the short last one.
    expect(sink.buffersSeen.size).toBeLessThanOrEqual(11);
    expect(handle.fd, 'the handle is closed once the stream ended').toBe(-1);
  });

  it('takes the pool buffers back, so that the next stream allocates none', async () => {
    const content = randomBytes(CHUNK * 10);
    const pool = new BufferPool(CHUNK, 16);
    // A destination that asks to drain after every chunk, like a socket given 1 MiB chunks.
    const first = new SlowSink({ highWaterMark: CHUNK });
    await pipeline(new FileRangeStream(await fileOf(content), { start: 0, end: content.length - 1 }, pool), first);
    const second = new SlowSink({ highWaterMark: CHUNK });
    await pipeline(new FileRangeStream(await fileOf(content), { start: 0, end: content.length - 1 }, pool), second);
    expect([...second.buffersSeen].every((buffer) => first.buffersSeen.has(buffer))).toBe(true);
    expect(Buffer.concat(second.received)).toEqual(content);
  });

  it('leaves the destination open with end: false, and still ends itself', async () => {
    const content = randomBytes(CHUNK * 3);
    const handle = await fileOf(content);
    const sink = new SlowSink();
    const stream = new FileRangeStream(handle, { start: 0, end: content.length - 1 }, new BufferPool(CHUNK, 4));
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.pipe(sink, { end: false });
    await closed;
    expect(sink.writableEnded).toBe(false);
    expect(handle.fd).toBe(-1);
    const finished = new Promise((resolve) => sink.once('finish', resolve));
    sink.end();
    await finished;
    expect(Buffer.concat(sink.received)).toEqual(content);
  });

  it('stops copying and closes the file when destroyed part-way (the client went away)', async () => {
    const content = randomBytes(CHUNK * 50);
    const handle = await fileOf(content);
    const stream = new FileRangeStream(handle, { start: 0, end: content.length - 1 }, new BufferPool(CHUNK, 4));
    const sink = new SlowSink({
      onWrite: (self) => {
        if (self.received.length === 3) stream.destroy();
      },
    });
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.pipe(sink);
    await closed;
    const finished = new Promise((resolve) => sink.once('close', resolve));
    sink.destroy();
    await finished;
    // What the destination had accepted before the destroy, and nothing after: far from all 50.
    expect(sink.received.length).toBeLessThan(15);
    expect(handle.fd).toBe(-1);
  });

  it('stops and closes the file when the destination is destroyed on its own', async () => {
    const content = randomBytes(CHUNK * 50);
    const handle = await fileOf(content);
    const stream = new FileRangeStream(handle, { start: 0, end: content.length - 1 }, new BufferPool(CHUNK, 4));
    const sink = new SlowSink({
      onWrite: (self) => {
        if (self.received.length === 3) self.destroy();
      },
    });
    const closed = new Promise((resolve) => stream.once('close', resolve));
    let ended = false;
    stream.once('end', () => (ended = true));
    stream.pipe(sink);
    await closed;
    expect(ended, 'an incomplete copy is not an end').toBe(false);
    expect(sink.received.length).toBeLessThan(15);
    expect(handle.fd).toBe(-1);
  });

  it('fails with the position when the file is shorter than the range (truncated meanwhile)', async () => {
    const content = randomBytes(CHUNK * 2);
    const handle = await fileOf(content);
    const stream = new FileRangeStream(handle, { start: 0, end: CHUNK * 5 - 1 }, new BufferPool(CHUNK, 4));
    await expect(pipeline(stream, new SlowSink())).rejects.toThrow(`file ended at byte ${CHUNK * 2}, before the end of the range at byte ${CHUNK * 5}`);
    expect(handle.fd).toBe(-1);
  });
});

describe('FileRangeStream read as a plain Readable', () => {
  it('yields the range in order', async () => {
    const content = randomBytes(CHUNK * 7 + 3);
    const handle = await fileOf(content);
    const chunks: Buffer[] = [];
    for await (const chunk of new FileRangeStream(handle, { start: 10, end: 200 }, new BufferPool(CHUNK, 4))) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(content.subarray(10, 201));
    expect(handle.fd).toBe(-1);
  });

  it('is empty when end is before start', async () => {
    const handle = await fileOf(Buffer.alloc(0));
    const chunks: Buffer[] = [];
    for await (const chunk of new FileRangeStream(handle, { start: 0, end: -1 }, new BufferPool(CHUNK, 4))) chunks.push(chunk as Buffer);
    expect(chunks).toEqual([]);
  });
});

describe('BufferPool', () => {
  it('hands out idle buffers first, a pool-sized one for a full read, an exact one for a short read', () => {
    const pool = new BufferPool(CHUNK, 1);
    const full = pool.take(CHUNK * 2);
    expect(full.length).toBe(CHUNK);
    expect(pool.take(10).length).toBe(10);
    pool.give(full);
    expect(pool.take(10)).toBe(full);
  });

  it('keeps at most maxIdle buffers, and none of another size', () => {
    const pool = new BufferPool(CHUNK, 1);
    pool.give(Buffer.alloc(CHUNK));
    pool.give(Buffer.alloc(CHUNK));
    pool.give(Buffer.alloc(10));
    expect(pool.idle).toBe(1);
  });
});
