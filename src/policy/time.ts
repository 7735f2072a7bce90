/** Durations (`7d`, `1d12h`) and expiry timestamps as policies write them. */

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds in a duration such as `30m`, `12h`, `7d`, `2w`, `1d12h` (the schema guarantees the form). */
export function parseDuration(text: string): number {
  let total = 0;
  for (const match of text.matchAll(/(\d+)([smhdw])/g)) total += Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 0);
  return total;
}

/**
 * The instant (ms since epoch) an `expires` value stops applying. A date without time
 * (`2026-12-31`) lasts to the end of that day, UTC.
 */
export function expiryInstant(text: string): number {
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (date) return Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]) + 1);
  return Date.parse(text);
}

export const DAY_MS = 86_400_000;
