import picomatch from 'picomatch';
import { ImageReferenceError, parseImageReference, type ImageReference } from '../policy/image-reference.js';
import type { AdmissionContext, Operation, PolicyResult, ReviewedImage } from '../policy/types.js';
import { containerImages, locatePodSpec, objectMeta, type ContainerImage, type PodSpecLocation } from './pod-spec.js';
import type { AdmissionReviewRequest } from './review.js';

/**
 * The first stages shared by both webhooks: filter (operation, subresource, excluded namespace,
 * kind without a pod spec) and extract (pod spec, containers, image references).
 */
export interface Subject {
  review: AdmissionReviewRequest;
  operation: Operation;
  namespace: string;
  kind: string;
  name: string;
  dryRun: boolean;
  location: PodSpecLocation;
  containers: ContainerImage[];
}

export type Selection = { subject: Subject } | { skip: string };

/**
 * Compiles namespace globs once; the returned predicate is what the pipelines call per request.
 * A cluster has few namespaces, so answers are remembered by name (bounded: emptied when full).
 */
export function namespaceExcluder(globs: readonly string[]): (namespace: string) => boolean {
  if (globs.length === 0) return () => false;
  const matches = picomatch([...globs], { dot: true });
  const answers = new Map<string, boolean>();
  return (namespace) => {
    let excluded = answers.get(namespace);
    if (excluded === undefined) {
      excluded = matches(namespace);
      if (answers.size >= 4096) answers.clear();
      answers.set(namespace, excluded);
    }
    return excluded;
  };
}

/** Decides whether a request is evaluated at all, and extracts what is evaluated. */
export function selectSubject(review: AdmissionReviewRequest, excluded: (namespace: string) => boolean): Selection {
  const request = review.request;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { skip: `operation ${request.operation} is not evaluated` };
  if (request.subResource && request.subResource !== 'ephemeralcontainers') return { skip: `subresource ${request.subResource} is not evaluated` };
  const meta = objectMeta(request.object);
  const namespace = request.namespace || meta.namespace || '';
  if (namespace !== '' && excluded(namespace)) return { skip: `namespace ${namespace} is excluded` };
  const kind = request.kind.kind;
  const location = locatePodSpec(kind, request.object);
  if (!location) return { skip: `${kind} has no pod spec` };
  return {
    subject: {
      review,
      operation: request.operation,
      namespace,
      kind,
      name: request.name || meta.name || meta.generateName || '',
      dryRun: request.dryRun === true,
      location,
      containers: containerImages(location),
    },
  };
}

/** The context the policy engine evaluates in. */
export function admissionContext(subject: Subject, namespaceLabels: Readonly<Record<string, string>>): AdmissionContext {
  return { namespace: subject.namespace, namespaceLabels };
}

/** The policy name under which Portcullis reports problems of the object itself (not of a policy). */
export const BUILTIN_POLICY = 'portcullis';

/**
 * Parsed references by their text: controllers send the same few images again and again, and the
 * parse (several regular expressions per reference) was the largest single cost of the validate
 * path. Bounded; emptied when full. Only successful parses are kept (an invalid reference throws
 * every time, with its message). Every caller gets the same frozen object: nothing may change a
 * parsed reference (an attempt throws, ES modules being strict).
 */
const PARSED_MAX = 4096;
const parsed = new Map<string, ImageReference>();

function parseReference(text: string): ImageReference {
  let reference = parsed.get(text);
  if (reference === undefined) {
    reference = Object.freeze(parseImageReference(text));
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(text, reference);
  }
  return reference;
}

/**
 * Parses each container's image. A reference that cannot be parsed cannot be checked by any
 * policy, so it becomes an `error` result that denies (fail closed) instead of an image.
 */
export function reviewImages(containers: readonly ContainerImage[]): { images: ReviewedImage[]; invalid: PolicyResult[] } {
  const images: ReviewedImage[] = [];
  const invalid: PolicyResult[] = [];
  for (const container of containers) {
    try {
      images.push({ pointer: container.pointer, container: container.container, containerType: container.containerType, reference: parseReference(container.image) });
    } catch (error) {
      if (!(error instanceof ImageReferenceError)) throw error;
      invalid.push({
        policy: BUILTIN_POLICY,
        rule: 'imageReference',
        status: 'error',
        action: 'deny',
        image: container.image,
        pointer: container.pointer,
        message: `[${BUILTIN_POLICY}/imageReference] container ${container.container} (${container.pointer}): ${error.message}`,
      });
    }
  }
  return { images, invalid };
}
