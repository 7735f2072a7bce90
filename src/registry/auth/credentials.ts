import { PortcullisError } from '../../errors.js';

export type ParsedAuthorization =
  /** `Basic` with an empty user name and password (`Og==`): what clients send when they have no credentials. */
  | { scheme: 'none' }
  | { scheme: 'basic'; username: string; password: string }
  | { scheme: 'bearer'; token: string };

/**
 * Parses an Authorization header value. Throws UNAUTHORIZED saying what was expected when the
 * scheme is unknown or the Basic credentials are not base64 of `user:password`.
 */
export function parseAuthorization(header: string): ParsedAuthorization {
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
  const value = space === -1 ? '' : header.slice(space + 1).trim();
  if (scheme === 'basic') {
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64').toString('utf8') : '';
    if (decoded === ':') return { scheme: 'none' };
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new PortcullisError('UNAUTHORIZED', 'Authorization: Basic credentials must be base64 of "user:password"');
    return { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (scheme === 'bearer') {
    if (value === '') throw new PortcullisError('UNAUTHORIZED', 'Authorization: Bearer needs a token');
    return { scheme: 'bearer', token: value };
  }
  throw new PortcullisError('UNAUTHORIZED', `Authorization: expected Basic or Bearer, got ${JSON.stringify(scheme.slice(0, 20))}`);
}
