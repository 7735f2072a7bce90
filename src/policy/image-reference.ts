/**
 * Container image references as Kubernetes and container runtimes read them
 * (`[registry[:port]/]repository[:tag][@digest]`), normalised the way the Docker CLI does:
 * no registry means `docker.io`, a single-segment Docker Hub name gets `library/`.
 */
export interface ImageReference {
  /** The reference exactly as written in the pod spec. */
  original: string;
  /** Registry host with port, lower-case (`docker.io`, `registry.example.com:5000`). */
  registry: string;
  /** Repository path without the registry (`library/nginx`, `team/app`). */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` when the reference pins a digest. */
  digest?: string;
}

export const DEFAULT_REGISTRY = 'docker.io';

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export class ImageReferenceError extends Error {}

/** Parses a reference; throws ImageReferenceError saying what part is wrong. */
export function parseImageReference(original: string): ImageReference {
  const text = original.trim();
  if (text === '') throw new ImageReferenceError('image reference is empty');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageReferenceError(`"${original}": digest "${digest}" is not of the form algorithm:hex`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new ImageReferenceError(`"${original}": tag "${tag}" is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first.toLowerCase();
    parts.shift();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  for (const component of parts) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ImageReferenceError(`"${original}": repository component "${component}" must be lower-case letters, digits and separators`);
    }
  }
  const reference: ImageReference = { original, registry, repository: parts.join('/') };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/** `registry/repository` without tag or digest. */
export function repositoryName(reference: ImageReference): string {
  return `${reference.registry}/${reference.repository}`;
}

/** The tag the runtime pulls: the written tag, `latest` when neither tag nor digest is given. */
export function effectiveTag(reference: ImageReference): string | undefined {
  if (reference.tag !== undefined) return reference.tag;
  return reference.digest === undefined ? 'latest' : undefined;
}

/** The canonical string `registry/repository[:tag][@digest]`. */
export function formatImageReference(reference: ImageReference): string {
  let out = repositoryName(reference);
  if (reference.tag !== undefined) out += `:${reference.tag}`;
  if (reference.digest !== undefined) out += `@${reference.digest}`;
  return out;
}

/** `sha256:0123456789ab` — the first 12 hex characters, as messages show a digest. */
export function shortDigest(digest: string): string {
  const [algorithm, hex = ''] = digest.split(':');
  return `${algorithm}:${hex.slice(0, 12)}`;
}
