import { pointer } from './json-patch.js';

/**
 * Where the pod spec lives in each workload kind. Rules apply to pod controllers at apply time
 * (DESIGN.md, "autogen"), so a Deployment is refused with the reason instead of creating a
 * ReplicaSet whose pods are silently refused. Pods created by controllers are checked too.
 */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  // The object of a `pods/ephemeralcontainers` request before Kubernetes 1.22 (later it is a Pod).
  EphemeralContainers: [],
};

/** The pointers of each kind, computed once: `[specPointer, metadataPointer]`. */
const POINTERS: ReadonlyMap<string, readonly [string, string | undefined]> = new Map(
  Object.entries(POD_SPEC_PATHS).map(([kind, path]) => [kind, [pointer(...path), path.length > 0 ? pointer(...path.slice(0, -1), 'metadata') : undefined]] as const),
);

/** The kinds whose pod spec the webhooks evaluate. */
export const WORKLOAD_KINDS = Object.keys(POD_SPEC_PATHS).filter((kind) => kind !== 'EphemeralContainers');

export const CONTAINER_TYPES = ['initContainers', 'containers', 'ephemeralContainers'] as const;
export type ContainerType = (typeof CONTAINER_TYPES)[number];

export interface PodSpecLocation {
  kind: string;
  /** JSON pointer to the PodSpec in the submitted object (`/spec/template/spec`). */
  specPointer: string;
  spec: Record<string, unknown>;
  /** JSON pointer to the metadata next to the spec (pod or template metadata); absent for EphemeralContainers. */
  metadataPointer?: string;
}

export interface ContainerImage {
  /** JSON pointer to the `image` field (`/spec/template/spec/containers/0/image`). */
  pointer: string;
  container: string;
  containerType: ContainerType;
  /** The image as written; may be empty or malformed, which the caller reports. */
  image: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** True when `kind` carries a pod spec the webhooks evaluate. */
export function isWorkloadKind(kind: string): boolean {
  // Own keys only: `in` would also accept Object.prototype names such as "constructor".
  return Object.hasOwn(POD_SPEC_PATHS, kind);
}

/**
 * Finds the pod spec of `object` (of `kind`). Returns undefined for kinds without one and when the
 * object has no spec at the expected place (kube-apiserver's own validation rejects those).
 */
export function locatePodSpec(kind: string, object: unknown): PodSpecLocation | undefined {
  // Own keys only: a request of kind "constructor" must not reach Object.prototype.
  const path = Object.hasOwn(POD_SPEC_PATHS, kind) ? POD_SPEC_PATHS[kind] : undefined;
  if (path === undefined) return undefined;
  let value: unknown = object;
  for (const token of path) {
    if (!isRecord(value)) return undefined;
    value = value[token];
  }
  if (!isRecord(value)) return undefined;
  const [specPointer, metadataPointer] = POINTERS.get(kind) ?? [pointer(...path), undefined];
  const location: PodSpecLocation = { kind, specPointer, spec: value };
  if (metadataPointer !== undefined) location.metadataPointer = metadataPointer;
  return location;
}

/** Every container image of the pod spec, init containers first, in the order the pod lists them. */
/**
 * `<spec>/<type>/<index>/image`, the same string object every time for the same place: the
 * pointers of the known kinds are few, and a string that is reused keeps its hash (the evaluation
 * memo looks them up on every request). Bounded: emptied when full.
 */
const pointers = new Map<string, Record<ContainerType, string[]>>();
const POINTERS_MAX = 256;

function imagePointer(specPointer: string, containerType: ContainerType, index: number): string {
  let bySpec = pointers.get(specPointer);
  if (bySpec === undefined) {
    if (pointers.size >= POINTERS_MAX) pointers.clear();
    bySpec = { initContainers: [], containers: [], ephemeralContainers: [] };
    pointers.set(specPointer, bySpec);
  }
  const known = bySpec[containerType];
  // Container type names and indices need no escaping: plain concatenation.
  if (index >= 1024) return `${specPointer}/${containerType}/${index}/image`;
  return (known[index] ??= `${specPointer}/${containerType}/${index}/image`);
}

export function containerImages(location: PodSpecLocation): ContainerImage[] {
  const images: ContainerImage[] = [];
  for (const containerType of CONTAINER_TYPES) {
    const containers = location.spec[containerType];
    if (!Array.isArray(containers)) continue;
    containers.forEach((container: unknown, index) => {
      if (!isRecord(container)) return;
      images.push({
        pointer: imagePointer(location.specPointer, containerType, index),
        container: typeof container.name === 'string' ? container.name : `${containerType}[${index}]`,
        containerType,
        image: typeof container.image === 'string' ? container.image : '',
      });
    });
  }
  return images;
}

/** The names in the pod spec's `imagePullSecrets`, in order. */
export function pullSecretNames(location: PodSpecLocation): string[] {
  const secrets = location.spec.imagePullSecrets;
  if (!Array.isArray(secrets)) return [];
  return secrets.flatMap((entry: unknown) => (isRecord(entry) && typeof entry.name === 'string' ? [entry.name] : []));
}

/** Metadata of the submitted object (name, namespace, annotations), leniently read. */
export function objectMeta(object: unknown): { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, unknown> } {
  if (!isRecord(object) || !isRecord(object.metadata)) return {};
  const metadata = object.metadata;
  const meta: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, unknown> } = {};
  if (typeof metadata.name === 'string') meta.name = metadata.name;
  if (typeof metadata.generateName === 'string') meta.generateName = metadata.generateName;
  if (typeof metadata.namespace === 'string') meta.namespace = metadata.namespace;
  if (isRecord(metadata.annotations)) meta.annotations = metadata.annotations;
  return meta;
}
