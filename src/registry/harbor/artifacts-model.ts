import { NATIVE_REPORT_MIME, PRODUCED_REPORT_TYPES, VULNERABILITY_REPORT_MIME, type HarborScanOverview } from '../../harbor/report.js';
import type { ManifestReference, ManifestRow, RepositoryRow, TagRow } from '../metadata/store.js';
import { MEDIA_TYPES } from '../oci/manifest.js';

/** Config media types Harbor shows as an image. */
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);
const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';

/** Harbor's artifact `type`: IMAGE, CHART or UNKNOWN (CNAB and others are not told apart). */
export function artifactKind(row: Pick<ManifestRow, 'mediaType' | 'configMediaType'>): 'IMAGE' | 'CHART' | 'UNKNOWN' {
  if (row.mediaType === MEDIA_TYPES.ociIndex || row.mediaType === MEDIA_TYPES.dockerList) return 'IMAGE';
  if (row.configMediaType && IMAGE_CONFIGS.has(row.configMediaType)) return 'IMAGE';
  if (row.configMediaType === HELM_CONFIG) return 'CHART';
  return 'UNKNOWN';
}

/** Harbor's repository name in paths: the part after the project, `/` written `%252F` (encoded twice). */
export function encodeRepositoryName(repository: string): string {
  return encodeURIComponent(encodeURIComponent(repository));
}

export interface HarborRepositoryBody {
  id: number;
  project_id?: number;
  name: string;
  artifact_count: number;
  pull_count: number;
  creation_time: string;
  update_time: string;
}

export function repositoryBody(row: RepositoryRow, artifactCount: number, projectId: number | undefined): HarborRepositoryBody {
  return {
    id: row.id,
    ...(projectId !== undefined ? { project_id: projectId } : {}),
    name: row.name,
    artifact_count: artifactCount,
    pull_count: row.pullCount,
    creation_time: row.createdAt,
    update_time: row.updatedAt,
  };
}

export interface HarborTagBody {
  id: number;
  repository_id: number;
  artifact_id: number;
  name: string;
  push_time: string;
  pull_time: string;
  immutable: boolean;
}

/** Harbor's zero time, which it serves for "never pulled". */
const NEVER = '0001-01-01T00:00:00.000Z';

export function tagBody(tag: TagRow, repositoryId: number, pulledAt: string | null): HarborTagBody {
  return { id: tag.id, repository_id: repositoryId, artifact_id: tag.manifestId, name: tag.name, push_time: tag.pushedAt, pull_time: pulledAt ?? NEVER, immutable: false };
}

export interface ArtifactBodyInput {
  row: ManifestRow;
  repository: RepositoryRow;
  projectId: number | undefined;
  tags: TagRow[] | undefined;
  children: ManifestReference[];
  childIds: Map<string, number>;
  scanOverview: HarborScanOverview | undefined;
}

/** The `Artifact` model of the Harbor swagger. */
export function artifactBody(input: ArtifactBodyInput): Record<string, unknown> {
  const { row, repository } = input;
  const kind = artifactKind(row);
  const shortName = repository.name.slice(repository.project.length + 1);
  const base = `/api/v2.0/projects/${repository.project}/repositories/${encodeRepositoryName(shortName)}/artifacts/${row.digest}`;
  return {
    id: row.id,
    type: kind,
    media_type: row.configMediaType ?? row.mediaType,
    manifest_media_type: row.mediaType,
    ...(row.artifactType && row.artifactType !== row.configMediaType ? { artifact_type: row.artifactType } : {}),
    ...(input.projectId !== undefined ? { project_id: input.projectId } : {}),
    repository_id: repository.id,
    repository_name: repository.name,
    digest: row.digest,
    size: row.size,
    push_time: row.pushedAt,
    pull_time: row.pulledAt ?? NEVER,
    extra_attrs: {},
    annotations: row.annotations ?? {},
    references: input.children.map((child) => ({
      parent_id: row.id,
      ...(input.childIds.has(child.digest) ? { child_id: input.childIds.get(child.digest) } : {}),
      child_digest: child.digest,
      ...(child.platform ? { platform: child.platform } : {}),
      ...(child.annotations ? { annotations: child.annotations } : {}),
    })),
    ...(input.tags ? { tags: input.tags.map((tag) => tagBody(tag, repository.id, row.pulledAt)) } : {}),
    addition_links: kind === 'IMAGE' ? { vulnerabilities: { href: `${base}/additions/vulnerabilities`, absolute: false } } : {},
    labels: [],
    accessories: [],
    ...(input.scanOverview ? { scan_overview: input.scanOverview } : {}),
  };
}

export type ReportType = (typeof PRODUCED_REPORT_TYPES)[number];

function isReportType(value: string): value is ReportType {
  return (PRODUCED_REPORT_TYPES as readonly string[]).includes(value);
}

/**
 * The report types to look for, in the client's order, from `X-Accept-Vulnerabilities` as Harbor
 * reads it (`parseScanReportMimeTypes` of its v2.0 API handlers): without the header (or with an
 * empty one) the swagger default, v1.1 then native; otherwise the entries that are vulnerability
 * report types, any other (an SBOM report type, a wildcard) skipped; and when none is left,
 * native alone.
 */
export function acceptedReportTypes(header: string | string[] | undefined): [ReportType, ...ReportType[]] {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value || value.trim() === '') return [VULNERABILITY_REPORT_MIME, NATIVE_REPORT_MIME];
  // MIME types contain "; version=…" but not commas, so a comma separates entries.
  const wanted = value
    .split(',')
    .map((item) => item.trim().replace(/\s*;\s*/g, '; '))
    .filter(isReportType);
  const [first, ...rest] = wanted;
  return first === undefined ? [NATIVE_REPORT_MIME] : [first, ...rest];
}

/**
 * `scan_overview` for a client that accepts `accepted` (from acceptedReportTypes): the summary under
 * the first accepted type, as Harbor's scan report assembler does. Every accepted type is produced
 * from the same report, so the summary is the one the scanner gave, whichever type it is filed
 * under. Undefined when the artifact was never scanned.
 */
export function filterOverview(overview: HarborScanOverview | undefined, accepted: readonly [ReportType, ...ReportType[]]): HarborScanOverview | undefined {
  if (!overview) return undefined;
  const summary = PRODUCED_REPORT_TYPES.map((type) => overview[type]).find((candidate) => candidate !== undefined);
  return summary ? { [accepted[0]]: summary } : undefined;
}
