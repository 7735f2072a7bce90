import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password and robot-secret hashing: scrypt from node:crypto with a per-credential random salt,
 * stored as `scrypt$N$r$p$<salt b64>$<hash b64>` so that the cost can be raised later without
 * invalidating stored hashes. Comparison is constant-time.
 */

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** 2^14 × 8 × 128 B = 16 MiB and ~40 ms per hash on the CI machine. */
const DEFAULT_COST = { N: 16384, r: 8, p: 1 } as const;

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, DEFAULT_COST);
  return ['scrypt', DEFAULT_COST.N, DEFAULT_COST.r, DEFAULT_COST.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  cost: { N: number; r: number; p: number };
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0)) return undefined;
  return { cost: { N, r, p }, salt: Buffer.from(parts[4] ?? '', 'base64'), key: Buffer.from(parts[5] ?? '', 'base64') };
}

/**
 * Whether `password` matches `stored`. Always derives a key (from a dummy hash when `stored` is
 * absent or corrupt) so that unknown users take as long as known ones.
 */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parsed = (stored === undefined ? undefined : parseHash(stored)) ?? (await dummyHash());
  const key = await derive(password, parsed.salt, parsed.cost);
  const matches = key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  return matches && stored !== undefined && parseHash(stored) !== undefined;
}

let dummy: Promise<ParsedHash> | undefined;

function dummyHash(): Promise<ParsedHash> {
  dummy ??= hashPassword(randomBytes(16).toString('hex')).then((hash) => {
    const parsed = parseHash(hash);
    if (!parsed) throw new Error('hashPassword produced an unparseable hash');
    return parsed;
  });
  return dummy;
}

/** A random secret of `length` characters from an unambiguous alphabet (robot secrets, admin password). */
export function randomSecret(length = 32): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = randomBytes(length * 2);
  let out = '';
  // Rejection sampling keeps every character equally likely.
  for (const byte of bytes) {
    if (byte >= 256 - (256 % alphabet.length)) continue;
    out += alphabet[byte % alphabet.length];
    if (out.length === length) return out;
  }
  return out + randomSecret(length - out.length);
}
