import { fetch, type Dispatcher } from 'undici';
import { PortcullisError, describeError } from '../errors.js';
import type { DigestResolver } from '../verdicts/builtin-source.js';

/**
 * Just enough of an OCI Distribution client to resolve a tag to its digest the way Trivy and
 * skopeo do: `HEAD /v2/<repo>/manifests/<ref>`, answering a 401 with the Docker token flow
 * (`WWW-Authenticate: Bearer realm=…,service=…` → `GET realm?service&scope` with basic auth) or
 * with basic auth directly. Used by `portcullis scan` and by the verdict source when the webhook
 * runs apart from the registry.
 */
export interface RegistryClientOptions {
  /** `https://registry.example:5000` */
  baseUrl: string;
  username?: string;
  password?: string;
  dispatcher?: Dispatcher;
}

export interface ResolvedManifest {
  digest: string;
  mediaType: string;
}

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

function basicHeader(options: RegistryClientOptions): string | undefined {
  if (options.username === undefined) return undefined;
  return `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
}

/** Parses `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const match of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[match[1] as string] = match[2] as string;
  return { scheme, params };
}

async function request(url: string, init: { method: string; headers: Record<string, string>; signal?: AbortSignal }, options: RegistryClientOptions) {
  try {
    return await fetch(url, { ...init, ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}) });
  } catch (error) {
    throw new PortcullisError('VERDICT_UNAVAILABLE', `registry ${options.baseUrl} unreachable: ${describeError(error)}`, { cause: error });
  }
}

async function bearerToken(challenge: Record<string, string>, repository: string, options: RegistryClientOptions, signal?: AbortSignal): Promise<string> {
  const realm = challenge.realm;
  if (!realm) throw new PortcullisError('UNAUTHORIZED', `registry ${options.baseUrl}: Bearer challenge without a realm`);
  const url = new URL(realm);
  if (challenge.service) url.searchParams.set('service', challenge.service);
  url.searchParams.set('scope', `repository:${repository}:pull`);
  const basic = basicHeader(options);
  const response = await request(url.toString(), { method: 'GET', headers: basic ? { authorization: basic } : {}, ...(signal ? { signal } : {}) }, options);
  if (!response.ok) throw new PortcullisError('UNAUTHORIZED', `registry token service ${url.origin}${url.pathname} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  const body: unknown = await response.json();
  const token = typeof body === 'object' && body !== null ? ('token' in body ? body.token : 'access_token' in body ? body.access_token : undefined) : undefined;
  if (typeof token !== 'string') throw new PortcullisError('UNAUTHORIZED', `registry token service ${url.origin}${url.pathname}: no token in the answer`);
  return token;
}

/**
 * The digest and media type the registry serves for `repository:reference`; undefined when the
 * repository or reference does not exist (404). Throws UNAUTHORIZED for refused credentials.
 */
export async function resolveManifest(options: RegistryClientOptions, repository: string, reference: string, signal?: AbortSignal): Promise<ResolvedManifest | undefined> {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v2/${repository}/manifests/${reference}`;
  const head = (authorization?: string) =>
    request(url, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT, ...(authorization ? { authorization } : {}) }, ...(signal ? { signal } : {}) }, options);
  let response = await head();
  if (response.status === 401) {
    const challenge = parseChallenge(response.headers.get('www-authenticate'));
    const authorization = challenge?.scheme === 'bearer' ? `Bearer ${await bearerToken(challenge.params, repository, options, signal)}` : basicHeader(options);
    response = await head(authorization);
  }
  if (response.status === 404) return undefined;
  if (response.status === 401 || response.status === 403) {
    throw new PortcullisError('UNAUTHORIZED', `registry ${options.baseUrl} refused ${repository}:${reference} (${response.status}); check the credentials`);
  }
  if (!response.ok) throw new PortcullisError('VERDICT_UNAVAILABLE', `registry ${options.baseUrl} answered ${response.status} for ${repository}:${reference}`);
  const digest = response.headers.get('docker-content-digest');
  if (!digest) throw new PortcullisError('VERDICT_UNAVAILABLE', `registry ${options.baseUrl} sent no Docker-Content-Digest for ${repository}:${reference}`);
  return { digest, mediaType: (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '' };
}

/** A DigestResolver over the registry's HTTP API (for a webhook deployed apart from the registry). */
export function registryDigestResolver(options: RegistryClientOptions): DigestResolver {
  return {
    async resolve(repository, tag, signal) {
      return (await resolveManifest(options, repository, tag, signal))?.digest;
    },
  };
}
