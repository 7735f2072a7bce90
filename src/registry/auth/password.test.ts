import { describe, expect, it } from 'vitest';
import { hashPassword, randomSecret, verifyPassword } from './password.js';

describe('password hashing', () => {
  it('stores scrypt with its cost and a fresh salt, and verifies only the right password', async () => {
    const first = await hashPassword('Correct-horse-1');
    const second = await hashPassword('Correct-horse-1');
    expect(first).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(first).not.toBe(second);
    expect(await verifyPassword('Correct-horse-1', first)).toBe(true);
    expect(await verifyPassword('Correct-horse-2', first)).toBe(false);
  });

  it.each([
    { what: 'no stored hash (an unknown user)', stored: undefined },
    { what: 'a corrupt hash', stored: 'md5$abc' },
    { what: 'an empty hash', stored: '' },
  ])('refuses any password against $what, still deriving a key', async ({ stored }) => {
    expect(await verifyPassword('anything-at-all', stored)).toBe(false);
  });

  it('makes random secrets of the asked length from an unambiguous alphabet', () => {
    const secret = randomSecret(40);
    expect(secret).toHaveLength(40);
    expect(secret).toMatch(/^[A-HJ-NP-Za-km-z2-9]+$/);
  });
});
