/**
 * What the scanner needs from the registry, as small interfaces of its own: the scanner never
 * imports src/registry (they meet in src/main.ts, and over HTTP when deployed apart, where the
 * scanner pulls from the registry the way Trivy does).
 */

/** An artifact event as the scanner reads it (a structural subset of the registry's events). */
export interface ArtifactEvent {
  /** Only `artifact.pushed` starts a scan; other types are ignored. */
  type: string;
  /** `project/repo[/…]` */
  repository: string;
  digest: string;
  /** The manifest media type. */
  mediaType: string;
  tag?: string;
  /** OCI 1.1 `artifactType`, when the manifest has one. */
  artifactType?: string;
  configMediaType?: string;
}

export interface ArtifactEvents {
  /** Adds a listener; returns a function that removes it. Listeners may return a promise. */
  subscribe(listener: (event: ArtifactEvent) => void | Promise<void>): () => void;
}

export interface RobotCredential {
  username: string;
  password: string;
}

export interface CredentialIssuer {
  /**
   * A robot account of `project` allowed `actions` on its repositories, expiring after
   * `ttlSeconds`. Called once per scan attempt; the credential reaches Trivy only through its
   * environment. Rejects when the project does not exist.
   */
  issueRobotCredential(project: string, actions: readonly 'pull'[], ttlSeconds: number): Promise<RobotCredential>;
}

export interface ProjectSettingsReader {
  /** The project's settings; undefined when there is no such project (then pushes are scanned). */
  projectSettings(name: string): Promise<{ autoScan: boolean } | undefined>;
}

/** The project of a `project/repo` repository name. */
export function projectOf(repository: string): string {
  return repository.split('/')[0] ?? repository;
}

const IMAGE_MANIFESTS = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * Whether Trivy can scan an artifact, judged from its media types before running anything. An
 * empty `mediaType` means "not known" (a verdict asked for a bare digest): Trivy then decides.
 */
export function scannability(artifact: { mediaType: string; artifactType?: string; configMediaType?: string }): { scannable: true } | { scannable: false; reason: string } {
  if (artifact.mediaType !== '' && !IMAGE_MANIFESTS.has(artifact.mediaType)) {
    return { scannable: false, reason: `manifest media type ${artifact.mediaType} is not a container image` };
  }
  const type = artifact.artifactType ?? artifact.configMediaType;
  if (type !== undefined && type !== '' && !IMAGE_CONFIGS.has(type)) {
    const what = type.includes('helm') ? 'a Helm chart' : `an OCI artifact of type ${type}`;
    return { scannable: false, reason: `${what} is not a container image; Trivy scans images only` };
  }
  return { scannable: true };
}
