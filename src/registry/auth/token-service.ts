import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { LRUCache } from 'lru-cache';
import { PortcullisError } from '../../errors.js';
import type { Clock } from './clock.js';
import type { AccessEntry } from './scope.js';
import type { SigningKey } from './token-key.js';

/** The token issuer (`iss`); the registry accepts only tokens it signed itself. */
export const TOKEN_ISSUER = 'portcullis-token-service';
/** The service (`aud`) named in challenges and tokens. */
export const TOKEN_SERVICE = 'portcullis-registry';
/** Refresh tokens (OAuth2 `access_type=offline`) live this long. */
const REFRESH_TTL_SECONDS = 30 * 24 * 3600;

export interface IssuedToken {
  token: string;
  expiresIn: number;
  /** RFC 3339. */
  issuedAt: string;
}

export interface VerifiedToken {
  /** `''` for an anonymous token. */
  subject: string;
  access: AccessEntry[];
}

function isAccessEntry(value: unknown): value is AccessEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry.type === 'string' &&
    typeof entry.name === 'string' &&
    Array.isArray(entry.actions) &&
    entry.actions.every((action) => typeof action === 'string')
  );
}

/**
 * Signs and verifies registry bearer tokens (reference auth-jwt.md): ES256, `kid` = the JWK
 * thumbprint, claims `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and `access`. Refresh tokens
 * are JWTs of the same key with `typ_use: "refresh"` and a fingerprint of the credential they came
 * from, so changing a password or robot secret revokes them.
 */
export class TokenService {
  /** Tokens already verified, with their expiry (s): each push or pull sends the same token many times. */
  private readonly verified = new LRUCache<string, { token: VerifiedToken; exp: number }>({ max: 10_000 });

  constructor(
    private readonly key: SigningKey,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {}

  async issue(subject: string, access: AccessEntry[]): Promise<IssuedToken> {
    const now = Math.floor(this.clock.now() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: this.key.alg, typ: 'JWT', kid: this.key.kid })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(subject)
      .setAudience(TOKEN_SERVICE)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.ttlSeconds)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
    return { token, expiresIn: this.ttlSeconds, issuedAt: new Date(now * 1000).toISOString() };
  }

  /** Throws UNAUTHORIZED naming the reason (bad signature, expired, wrong audience, malformed). */
  async verify(token: string): Promise<VerifiedToken> {
    const cached = this.verified.get(token);
    if (cached && cached.exp * 1000 > this.clock.now()) return cached.token;
    const payload = await this.verifyJwt(token, 'bearer token');
    if (payload.typ_use !== undefined) throw new PortcullisError('UNAUTHORIZED', 'bearer token: a refresh token cannot be used as an access token');
    const access = payload.access ?? [];
    if (!Array.isArray(access) || !access.every(isAccessEntry)) {
      throw new PortcullisError('UNAUTHORIZED', 'bearer token: claim "access" must be an array of {type, name, actions}');
    }
    const verified = { subject: payload.sub ?? '', access };
    if (typeof payload.exp === 'number') this.verified.set(token, { token: verified, exp: payload.exp });
    return verified;
  }

  async issueRefresh(subject: string, credentialFingerprint: string): Promise<string> {
    const now = Math.floor(this.clock.now() / 1000);
    return new SignJWT({ typ_use: 'refresh', cred: credentialFingerprint })
      .setProtectedHeader({ alg: this.key.alg, typ: 'JWT', kid: this.key.kid })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(subject)
      .setAudience(TOKEN_SERVICE)
      .setIssuedAt(now)
      .setExpirationTime(now + REFRESH_TTL_SECONDS)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
  }

  async verifyRefresh(token: string): Promise<{ subject: string; credentialFingerprint: string }> {
    const payload = await this.verifyJwt(token, 'refresh token');
    if (payload.typ_use !== 'refresh' || typeof payload.cred !== 'string' || !payload.sub) {
      throw new PortcullisError('UNAUTHORIZED', 'refresh token: not a refresh token');
    }
    return { subject: payload.sub, credentialFingerprint: payload.cred };
  }

  private async verifyJwt(token: string, what: string) {
    try {
      const { payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: TOKEN_ISSUER,
        audience: TOKEN_SERVICE,
        algorithms: [this.key.alg],
        currentDate: new Date(this.clock.now()),
        clockTolerance: 5,
      });
      return payload;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new PortcullisError('UNAUTHORIZED', `${what}: expired`, { cause: error });
      if (error instanceof joseErrors.JOSEError) throw new PortcullisError('UNAUTHORIZED', `${what}: ${error.message}`, { cause: error });
      throw error;
    }
  }
}
