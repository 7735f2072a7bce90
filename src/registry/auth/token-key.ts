import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { PortcullisError, describeError } from '../../errors.js';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The JWK thumbprint of the public key, served as `kid`. */
  kid: string;
  alg: 'ES256';
  path: string;
}

export function tokenKeyPath(dataDir: string): string {
  return join(dataDir, 'registry-auth', 'token-signing-key.pem');
}

/**
 * Loads the token signing key (ECDSA P-256, PKCS#8 PEM) from the data directory, generating it on
 * first start. The file is written mode 0600 through a temporary file and a rename, so a crash
 * never leaves half a key; an existing file with looser permissions is tightened.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const path = tokenKeyPath(dataDir);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) {
      throw new PortcullisError('INTERNAL', `${path}: cannot read the token signing key: ${describeError(error)}`, { cause: error });
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // A random name, not the pid: in a container the pid is the same on every start, so a temporary
    // file left by a crash between write and rename made every later start fail with EEXIST.
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(temporary, pem, { mode: 0o600, flag: 'wx' });
      renameSync(temporary, path);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw new PortcullisError('INTERNAL', `${path}: cannot write the token signing key: ${describeError(error)}`, { cause: error });
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new PortcullisError('INTERNAL', `${path}: the token signing key is not a PKCS#8 PEM key: ${describeError(error)}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PortcullisError('INTERNAL', `${path}: expected an EC P-256 key, got ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  }
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { privateKey, publicKey, kid, alg: 'ES256', path };
}
