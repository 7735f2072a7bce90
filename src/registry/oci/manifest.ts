import { Ajv, type JSONSchemaType } from 'ajv';
import { PortcullisError } from '../../errors.js';
import type { ManifestReference } from '../metadata/store.js';
import { isDigest } from './digest.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Manifest media types this registry stores; Docker schema 1 is not among them (deprecated, unsigned). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList];

/** Largest manifest accepted (the distribution spec's recommended minimum limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Record<string, unknown>;
}

interface ManifestDocument {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

const annotations = { type: 'object', additionalProperties: { type: 'string' }, required: [], nullable: true } as const;
const descriptor: JSONSchemaType<Descriptor> = {
  type: 'object',
  required: ['mediaType', 'digest', 'size'],
  properties: {
    mediaType: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(;.*)?$' },
    digest: { type: 'string', minLength: 1 },
    size: { type: 'integer', minimum: 0 },
    artifactType: { type: 'string', nullable: true },
    urls: { type: 'array', items: { type: 'string' }, nullable: true },
    annotations,
    platform: { type: 'object', nullable: true, required: [] },
  },
};
const manifestSchema: JSONSchemaType<ManifestDocument> = {
  type: 'object',
  required: ['schemaVersion'],
  properties: {
    schemaVersion: { type: 'integer', const: 2 },
    mediaType: { type: 'string', nullable: true },
    artifactType: { type: 'string', nullable: true },
    config: { ...descriptor, nullable: true },
    layers: { type: 'array', items: descriptor, nullable: true },
    manifests: { type: 'array', items: descriptor, nullable: true },
    subject: { ...descriptor, nullable: true },
    annotations,
  },
};

const ajv = new Ajv({ allErrors: false, strict: false });
const validateManifest = ajv.compile(manifestSchema);

/** What the registry records about a manifest it accepted. */
export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** `artifactType`, or for an image manifest the config's media type (as the referrers API reports). */
  artifactType?: string;
  configMediaType?: string;
  subject?: string;
  annotations?: Record<string, string>;
  /** Blobs that must exist in the repository (config and layers, without foreign `urls` layers). */
  blobs: string[];
  /** Child manifests that must exist in the repository (of an index). */
  children: string[];
  references: ManifestReference[];
}

function invalid(message: string): PortcullisError {
  return new PortcullisError('REGISTRY_MANIFEST_INVALID', message);
}

/**
 * Parses and checks a manifest body against the media type it was pushed with (`contentType`, the
 * Content-Type header; the document's own `mediaType` when the header is absent). Throws
 * REGISTRY_MANIFEST_INVALID naming the field at fault.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw invalid(`manifest is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!validateManifest(document)) {
    const first = validateManifest.errors?.[0];
    throw invalid(`manifest${first?.instancePath ?? ''}: ${first?.message ?? 'does not match the manifest schema'}`);
  }
  const header = contentType?.split(';')[0]?.trim();
  const declared = document.mediaType;
  const mediaType = header && header !== 'application/octet-stream' ? header : declared;
  if (!mediaType) throw invalid('manifest media type unknown: no Content-Type header and no mediaType field');
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw invalid(`manifest media type "${mediaType}" is not supported; expected one of ${MANIFEST_MEDIA_TYPES.join(', ')}`);
  }
  if (declared !== undefined && declared !== mediaType) {
    throw invalid(`manifest mediaType field "${declared}" does not match Content-Type "${mediaType}"`);
  }
  const checkDescriptor = (d: Descriptor, where: string) => {
    if (!isDigest(d.digest)) throw invalid(`manifest ${where}.digest: expected sha256:<64 hex> or sha512:<128 hex>, got "${d.digest.slice(0, 150)}"`);
  };
  const references: ManifestReference[] = [];
  const subject = document.subject;
  if (subject) {
    checkDescriptor(subject, 'subject');
    references.push({ digest: subject.digest, kind: 'subject', mediaType: subject.mediaType, size: subject.size });
  }
  const base = {
    mediaType,
    ...(document.annotations ? { annotations: document.annotations } : {}),
    ...(subject ? { subject: subject.digest } : {}),
  };

  if (mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerList) {
    if (!document.manifests) throw invalid('index: "manifests" is required');
    if (document.config || document.layers) throw invalid('index: must not have "config" or "layers"');
    document.manifests.forEach((child, index) => {
      checkDescriptor(child, `manifests[${index}]`);
      references.push({
        digest: child.digest,
        kind: 'manifest',
        mediaType: child.mediaType,
        size: child.size,
        ...(child.platform ? { platform: child.platform } : {}),
        ...(child.annotations ? { annotations: child.annotations } : {}),
      });
    });
    return {
      ...base,
      kind: 'index',
      ...(document.artifactType ? { artifactType: document.artifactType } : {}),
      blobs: [],
      children: [...new Set(document.manifests.map((child) => child.digest))],
      references,
    };
  }

  if (!document.config) throw invalid('manifest: "config" is required');
  if (!document.layers) throw invalid('manifest: "layers" is required');
  if (document.manifests) throw invalid('manifest: must not have "manifests"');
  checkDescriptor(document.config, 'config');
  references.push({ digest: document.config.digest, kind: 'config', mediaType: document.config.mediaType, size: document.config.size });
  const blobs = [document.config.digest];
  document.layers.forEach((layer, index) => {
    checkDescriptor(layer, `layers[${index}]`);
    references.push({ digest: layer.digest, kind: 'layer', mediaType: layer.mediaType, size: layer.size });
    // Foreign layers (Windows base images) live elsewhere and need not be pushed.
    if (!layer.urls || layer.urls.length === 0) blobs.push(layer.digest);
  });
  const artifactType = document.artifactType ?? document.config.mediaType;
  return {
    ...base,
    kind: 'image',
    artifactType,
    configMediaType: document.config.mediaType,
    blobs: [...new Set(blobs)],
    children: [],
    references,
  };
}

/**
 * Content negotiation for GET/HEAD of a manifest: whether a stored manifest of `mediaType` may be
 * served to a client that sent `accept`. No Accept, `*\/*` or a listed type all allow it; there is
 * no conversion between formats, so anything else is a miss.
 */
export function acceptable(mediaType: string, accept: string | string[] | undefined): boolean {
  if (accept === undefined) return true;
  const values = (Array.isArray(accept) ? accept : [accept]).flatMap((value) => value.split(',')).map((value) => value.split(';')[0]?.trim() ?? '');
  if (values.every((value) => value === '')) return true;
  return values.some((value) => value === mediaType || value === '*/*' || value === 'application/*' || (value === 'application/json' && mediaType.startsWith('application/vnd.docker.')));
}
