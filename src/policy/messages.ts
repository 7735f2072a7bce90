/**
 * The text users read at `kubectl apply`: one line per violation,
 * `[policy/rule] image (sha256:short): 2 Critical, 1 High above the limit High: CVE-… (openssl 1.1.1k → 1.1.1l), … (+N more)`,
 * and one closing line on how to request an exception. Warnings must stay under 120 characters,
 * so every line can be rendered shorter (fewer CVEs listed, then cut).
 */
import { shortDigest } from './image-reference.js';
import { severityRank, type Finding, type ReviewedImage, type VerdictState } from './types.js';

/** Kubernetes shows admission warnings of at most 120 characters; ours stay strictly below. */
export const MAX_WARNING_LENGTH = 119;
/** How many CVEs a denial line names before `(+N more)`. */
export const MAX_LISTED_CVES = 3;

/** A violation line in parts, so it can be rendered long (denial) or short (warning). */
export interface ViolationText {
  policy: string;
  rule: string;
  /** `nginx:1.21 (sha256:0123456789ab)` */
  subject: string;
  /** The image alone (`nginx:1.21`), for warnings that must be short. */
  image?: string;
  /** What is wrong (`2 Critical, 1 High above the limit High`). */
  summary: string;
  /** Findings to name, worst first (`CVE-2021-3711 (openssl 1.1.1k → 1.1.1l)`). */
  items?: string[];
  /** The same findings by id only, for short renderings (`CVE-2021-3711`). */
  ids?: string[];
  /** Said after the findings (`scan is 12d old, older than the 7d allowed`). */
  note?: string;
}

export function imageSubject(image: ReviewedImage, verdictDigest?: string): string {
  const digest = image.digest ?? image.reference.digest ?? verdictDigest;
  return digest === undefined ? image.reference.original : `${image.reference.original} (${shortDigest(digest)})`;
}

/** Renders with at most `maxItems` findings named; the rest become `(+N more)`. */
export function renderViolation(text: ViolationText, maxItems = MAX_LISTED_CVES): string {
  const head = `[${text.policy}/${text.rule}] ${text.subject}: ${text.summary}`;
  const note = text.note === undefined ? '' : `; ${text.note}`;
  const shown = (text.items ?? []).slice(0, maxItems);
  const more = (text.items ?? []).length - shown.length;
  // With no findings named, the summary's counts say enough.
  if (shown.length === 0) return `${head}${note}`;
  return `${head}: ${shown.join(', ')}${more > 0 ? ` (+${more} more)` : ''}${note}`;
}

/**
 * The longest rendering that fits a warning: findings with packages (three, then two), then by id
 * only (three, two, one); then the same without the digest; then no findings; and as a last resort
 * the image name is shortened in the middle so that what is wrong stays readable.
 */
export function renderWarning(text: ViolationText): string {
  const ids = { ...text, items: text.ids ?? text.items ?? [] };
  const bare = text.image === undefined ? undefined : { ...ids, subject: text.image };
  const attempts: [ViolationText, number][] = [
    [text, 3],
    [text, 2],
    [ids, 3],
    [ids, 2],
    [ids, 1],
  ];
  if (bare) attempts.push([bare, 3], [bare, 2], [bare, 1], [bare, 0]);
  attempts.push([text, 0]);
  for (const [variant, max] of attempts) {
    const line = renderViolation(variant, max);
    if (line.length <= MAX_WARNING_LENGTH) return line;
  }
  const shortest = bare ?? text;
  const fixed = renderViolation({ ...shortest, subject: '' }, 0).length;
  const subject = truncateMiddle(shortest.subject, Math.max(MAX_WARNING_LENGTH - fixed, 12));
  return truncate(renderViolation({ ...shortest, subject }, 0), MAX_WARNING_LENGTH);
}

/** `registry.example.com/…/service:1.0` — keeps both ends, which say where and which version. */
export function truncateMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = max - 1;
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

export function truncate(line: string, max: number): string {
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/**
 * `CVE-2021-3711 (openssl 1.1.1k → 1.1.1l)`, or `(busybox 1.30.1, no fix)` when unfixed; when the
 * same CVE is found in other packages too, `, +N packages` says so (the counts include them).
 */
export function describeFinding(finding: Finding, otherPackages = 0): string {
  const fix = finding.fixedVersion ? ` → ${finding.fixedVersion}` : ', no fix';
  const others = otherPackages > 0 ? `, +${otherPackages} package${otherPackages === 1 ? '' : 's'}` : '';
  return `${finding.id} (${finding.package} ${finding.installedVersion}${fix}${others})`;
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Worst first, then by id, one entry per CVE id (the first package found, and how many others). */
export function listFindings(findings: readonly Finding[]): { items: string[]; ids: string[] } {
  // Ordinal comparison: ids and package names are ASCII, and localeCompare (ICU collation) made
  // this sort the costliest step of evaluating an image with many findings.
  const sorted = [...findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || ordinal(a.id, b.id) || ordinal(a.package, b.package));
  const first = new Map<string, { finding: Finding; count: number }>();
  for (const finding of sorted) {
    const entry = first.get(finding.id);
    if (entry) entry.count += 1;
    else first.set(finding.id, { finding, count: 1 });
  }
  const entries = [...first.values()];
  return { items: entries.map(({ finding, count }) => describeFinding(finding, count - 1)), ids: entries.map(({ finding }) => finding.id) };
}

const STATE_LABELS: Readonly<Record<Exclude<VerdictState, 'scanned'>, string>> = {
  pending: 'scan pending',
  unscanned: 'not scanned yet',
  failed: 'scan failed',
  unsupported: 'cannot be scanned',
  unavailable: 'no verdict',
};

/** `scan pending: queued behind 3 jobs`; the reason alone when it already says it (`scanner not ready: …`). */
export function describeState(state: Exclude<VerdictState, 'scanned'>, reason: string): string {
  const label = STATE_LABELS[state];
  const trimmed = reason.trim();
  if (trimmed === '' ) return label;
  if (trimmed.toLowerCase().startsWith(label) || /^scanner not ready/i.test(trimmed)) return trimmed;
  return `${label}: ${trimmed}`;
}

/** `12d` / `5h` / `40m`: an age as a short human duration. */
export function describeAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

/** The closing line of a denial: which kind to create and which fields to set. */
export function exceptionHint(policies: readonly string[], namespace: string): string {
  return (
    `To request an exception, submit a PolicyException (portcullis.io/v1alpha1) with spec.policies [${policies.join(', ')}], ` +
    `spec.namespaces [${namespace}], spec.images (glob or digest), optional spec.cves, a spec.reason and spec.expires (docs/policies.md).`
  );
}
