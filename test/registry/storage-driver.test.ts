import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StorageDriverError, type StorageDriver } from '../../src/registry/storage/driver.js';
import { FilesystemDriver } from '../../src/registry/storage/filesystem.js';
import { tempDir } from '../helpers/tmp.js';

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function chunks(...parts: string[]): AsyncIterable<Buffer> {
  return Readable.from(parts.map((part) => Buffer.from(part)));
}

async function* failing(afterBytes: string): AsyncIterable<Buffer> {
  yield Buffer.from(afterBytes);
  throw new Error('client went away');
}

async function expectKind(promise: Promise<unknown>, kind: string): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StorageDriverError);
  expect((error as StorageDriverError).kind).toBe(kind);
}

/**
 * The contract of src/registry/storage/driver.ts, run against every driver. Each case cleans up
 * after itself, and the suite fails if anything is left behind.
 */
function driverConformance(name: string, create: () => { driver: StorageDriver; dispose(): void }): void {
  describe(`the ${name} storage driver`, () => {
    const { driver, dispose } = create();
    afterEach(async () => {
      expect(await driver.list('/'), 'a test left data behind').toEqual([]);
    });
    afterAll(() => dispose());

    it('reports absence: stat is undefined, list is empty, reader and getContent throw not-found', async () => {
      expect(await driver.stat('/missing/data')).toBeUndefined();
      expect(await driver.list('/missing')).toEqual([]);
      await expectKind(driver.reader('/missing/data'), 'not-found');
      await expectKind(driver.getContent('/missing/data'), 'not-found');
      await expectKind(driver.truncate('/missing/data', 0), 'not-found');
      await expectKind(driver.move('/missing/data', '/elsewhere/data'), 'not-found');
    });

    it('appends streams, creating parents, and returns the new size', async () => {
      expect(await driver.append('/a/b/data', chunks('hello', ' '))).toBe(6);
      expect(await driver.append('/a/b/data', chunks('world'))).toBe(11);
      expect((await driver.stat('/a/b/data'))?.size).toBe(11);
      expect(await text(await driver.reader('/a/b/data'))).toBe('hello world');
      expect(await text(await driver.reader('/a/b/data', { start: 6 }))).toBe('world');
      expect(await text(await driver.reader('/a/b/data', { start: 1, end: 4 }))).toBe('ello');
      expect(await text(await driver.reader('/a/b/data', { start: 6, end: 99 })), 'an end past the last byte stops there').toBe('world');
      await driver.delete('/a');
    });

    it('keeps the bytes written before a failing source, and rethrows', async () => {
      await expect(driver.append('/f/data', failing('partial'))).rejects.toThrow(/client went away/);
      expect(await driver.getContent('/f/data')).toEqual(Buffer.from('partial'));
      await driver.truncate('/f/data', 3);
      expect(await driver.getContent('/f/data')).toEqual(Buffer.from('par'));
      await driver.delete('/f');
    });

    it('moves atomically, replacing the destination', async () => {
      await driver.putContent('/m/old', Buffer.from('old'));
      await driver.putContent('/m/new', Buffer.from('new'));
      await driver.move('/m/new', '/m/sub/old');
      await driver.move('/m/sub/old', '/m/old');
      expect(await driver.getContent('/m/old')).toEqual(Buffer.from('new'));
      expect(await driver.stat('/m/new')).toBeUndefined();
      await driver.delete('/m');
    });

    it('writes whole content atomically and lists children sorted', async () => {
      await driver.putContent('/l/b', Buffer.from('2'));
      await driver.putContent('/l/a', Buffer.from('1'));
      await driver.putContent('/l/a', Buffer.from('one'));
      expect(await driver.list('/l')).toEqual(['a', 'b']);
      expect(await driver.getContent('/l/a')).toEqual(Buffer.from('one'));
      await driver.delete('/l');
    });

    it('deletes idempotently', async () => {
      await driver.putContent('/d/x', Buffer.from('x'));
      await driver.delete('/d');
      await driver.delete('/d');
      expect(await driver.stat('/d/x')).toBeUndefined();
    });

    it.each([
      ['a relative path', 'relative/data'],
      ['a dot-dot component', '/a/../../etc/passwd'],
      ['a dot component', '/a/./b'],
      ['an empty component', '/a//b'],
    ])('refuses %s with invalid-path', async (_name, path) => {
      await expectKind(driver.stat(path), 'invalid-path');
      await expectKind(driver.putContent(path, Buffer.from('x')), 'invalid-path');
    });
  });
}

driverConformance('filesystem', () => {
  const dir = tempDir('portcullis-driver-');
  return { driver: new FilesystemDriver(dir.path), dispose: () => dir.remove() };
});
