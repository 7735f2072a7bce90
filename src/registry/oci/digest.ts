import { createHash, type Hash } from 'node:crypto';
import { PortcullisError } from '../../errors.js';

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export type DigestAlgorithm = 'sha256' | 'sha512';

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** Whether `value` has the grammar of a digest at all (any algorithm): tells a digest from a tag. */
export function looksLikeDigest(value: string): boolean {
  return value.includes(':') && ANY_DIGEST.test(value);
}

/** Checks a digest of a supported algorithm; throws REGISTRY_DIGEST_INVALID naming `where`. */
export function checkDigest(value: string, where: string): string {
  if (!DIGEST.test(value)) {
    throw new PortcullisError('REGISTRY_DIGEST_INVALID', `${where}: expected sha256:<64 hex> or sha512:<128 hex>, got "${value.slice(0, 150)}"`);
  }
  return value;
}

export function algorithmOf(digest: string): DigestAlgorithm {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** An incremental hash that yields `algorithm:hex`. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  readonly #hash: Hash;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
  }

  digest(): string {
    return `${this.algorithm}:${this.#hash.digest('hex')}`;
  }
}

export function digestOf(content: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`;
}
