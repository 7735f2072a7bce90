import { readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.js';
import { loadOrCreateSigningKey, tokenKeyPath } from './token-key.js';

const dirs: { remove(): void }[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) dir.remove();
});

describe('loadOrCreateSigningKey', () => {
  it('creates the key with mode 0600 and leaves no temporary file behind', async () => {
    const dir = tempDir('portcullis-token-key-');
    dirs.push(dir);
    const key = await loadOrCreateSigningKey(dir.path);
    expect(key.alg).toBe('ES256');
    expect(statSync(tokenKeyPath(dir.path)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dirname(tokenKeyPath(dir.path))).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('starts even when a crash left the temporary file of a process with the same pid (a container restart)', async () => {
    const dir = tempDir('portcullis-token-key-');
    dirs.push(dir);
    const path = tokenKeyPath(dir.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.${process.pid}.tmp`, 'half a key');
    const key = await loadOrCreateSigningKey(dir.path);
    expect((await loadOrCreateSigningKey(dir.path)).kid).toBe(key.kid);
  });
});
