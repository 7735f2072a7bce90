import { PortcullisError } from '../errors.js';

/**
 * The fields a decision must match exactly (or by glob, for `image`), shared by the API's query
 * string (src/audit/api-schemas.ts) and the parsed filter below. Absent fields do not filter.
 */
export interface DecisionMatch {
  namespace?: string;
  kind?: string;
  name?: string;
  /** Glob over the image as written in the object: `*` any characters (including `/`), `?` one. */
  image?: string;
  digest?: string;
  /** Decisions in which this policy failed, warned or errored (not those where it passed). */
  policy?: string;
  decision?: 'allow' | 'deny';
  user?: string;
  operation?: string;
  dryRun?: boolean;
}

/**
 * The filters of a decision query after parsing (src/audit/routes.ts turns query parameters into
 * this). Every present field must match; absent fields do not filter.
 */
export interface DecisionFilter extends DecisionMatch {
  /** Inclusive lower bound, ms since the epoch. */
  sinceMs?: number;
  /** Inclusive upper bound, ms since the epoch. */
  untilMs?: number;
}

/** Position after the last item of a page: list order is (time DESC, id DESC). */
export interface Cursor {
  timeMs: number;
  id: number;
}

const RELATIVE = /^(\d+)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses `24h`, `30m`, `7d` (that long before `nowMs`) or an ISO 8601 time. Throws
 * REQUEST_MALFORMED naming the parameter and the value.
 */
export function parseTime(parameter: string, value: string, nowMs: number): number {
  const relative = RELATIVE.exec(value.trim());
  if (relative) return nowMs - Number(relative[1]) * (UNIT_MS[relative[2] as string] as number);
  // Date.parse accepts too much ("1", "March 7"); require the ISO shape.
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const parsed = Date.parse(value.trim());
    if (Number.isFinite(parsed)) return parsed;
  }
  throw new PortcullisError('REQUEST_MALFORMED', `query parameter ${parameter}: expected an ISO 8601 time or a duration such as 24h, 30m, 7d, got "${value}"`, {
    detail: { parameter, value },
  });
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.timeMs}.${cursor.id}`, 'utf8').toString('base64url');
}

/** Throws REQUEST_MALFORMED when `text` is not a cursor this API handed out. */
export function decodeCursor(text: string): Cursor {
  const decoded = Buffer.from(text, 'base64url').toString('utf8');
  const match = /^(\d{1,16})\.(\d{1,19})$/.exec(decoded);
  if (!match) {
    throw new PortcullisError('REQUEST_MALFORMED', `query parameter cursor: expected a nextCursor value returned by this API, got "${text}"`, {
      detail: { parameter: 'cursor', value: text },
    });
  }
  return { timeMs: Number(match[1]), id: Number(match[2]) };
}

/** The literal part of a glob before its first wildcard (used to narrow an index range). */
export function globPrefix(glob: string): string {
  const wildcard = glob.search(/[*?]/);
  return wildcard < 0 ? glob : glob.slice(0, wildcard);
}

/** The smallest string greater than every string that starts with `prefix` (byte order, ASCII). */
export function prefixUpperBound(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

/** Glob (`*`, `?`) → SQLite GLOB pattern: `[` is the only other special character there. */
export function globToSqliteGlob(glob: string): string {
  return glob.replace(/\[/g, '[[]');
}

/** Glob (`*`, `?`) → SQL LIKE pattern with `\` as the escape character. */
export function globToLike(glob: string): string {
  return glob.replace(/[\\%_]/g, (match) => `\\${match}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

/** Extracts `sha256:<hex>` from a container status imageID (`docker-pullable://repo@sha256:…`). */
export function digestFromImageId(imageId: string | undefined): string | undefined {
  if (!imageId) return undefined;
  const match = /(sha256:[a-f0-9]{64})/.exec(imageId);
  return match ? match[1] : undefined;
}
