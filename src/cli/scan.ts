import { setTimeout as delay } from 'node:timers/promises';
import { Agent, fetch } from 'undici';
import { describeError, isPortcullisError } from '../errors.js';
import { VULNERABILITY_REPORT_MIME, type HarborVulnerabilityReport } from '../harbor/report.js';
import { ImageReferenceError, formatImageReference, parseImageReference } from '../policy/image-reference.js';
import { SEVERITIES, severityRank } from '../policy/types.js';
import { countSeverities } from '../scanner/normalize.js';
import { resolveManifest } from '../scanner/registry-client.js';
import { EXIT, UsageError, stringOption, type CliIO, type Command, type OptionValues } from './command.js';
import { clientConfig, scannerTarget } from './client-settings.js';

/**
 * The configuration (for defaults such as scanner.listen), read from the config file and the
 * configuration variables only: the client variables this command reads (PORTCULLIS_SCANNER_URL,
 * PORTCULLIS_REGISTRY_PASSWORD, PORTCULLIS_CA_FILE, …) are not configuration fields.
 */
const USAGE = `Usage: portcullis scan IMAGE [options]

Scans IMAGE with the Portcullis scanner and prints a summary by severity and the findings.
IMAGE is REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@DIGEST; a tag is resolved to its digest
at the registry first (with the credentials below). The scan goes through the scanner's Harbor
scanner-adapter API (POST /api/v1/scan, then the report); a digest that is already queued or
being scanned is joined, not scanned twice.

Options:
  --scanner URL          The scanner role [PORTCULLIS_SCANNER_URL; default: https://scanner.listen]
  --username NAME        Registry user for the tag lookup and the scan [PORTCULLIS_REGISTRY_USERNAME; default: admin]
  --password PASSWORD    Their password [PORTCULLIS_REGISTRY_PASSWORD, else PORTCULLIS_ADMIN_PASSWORD]
  --ca FILE              CA certificate (PEM) trusted for the registry and the scanner [PORTCULLIS_CA_FILE]
  --token TOKEN          Scanner API token when scanner.apiToken is set [PORTCULLIS_SCANNER_API_TOKEN]
  --plain-http           The registry speaks HTTP, not HTTPS
  --wait SECONDS         How long to wait for the report (default 600; 0: queue the scan and return)
  --all                  List every finding (default: the 20 most severe)
  -o, --output FORMAT    table (default) or json (the Harbor vulnerability report v1.1)

Exit codes: 0 the report was printed (whatever it found) or the scan was queued with --wait 0,
1 the scan failed or the artifact cannot be scanned (a Helm chart), 2 bad usage, unreachable
registry or scanner, or no report within --wait.

Example:
  portcullis scan 127.0.0.1:5000/team/app:1.0 --ca .portcullis/certs/ca.crt --username admin
`;

const TOP_FINDINGS = 20;

interface ScanSettings {
  scannerUrl: string;
  registryUrl: string;
  username?: string;
  password?: string;
  token?: string;
  dispatcher: Agent;
  waitSeconds: number;
}

function settings(values: OptionValues, io: CliIO, registryHost: string): ScanSettings {
  const config = clientConfig(io.env);
  const { url: scannerUrl, ca } = scannerTarget(values, io, config);
  const waitText = stringOption(values, 'wait') ?? '600';
  const waitSeconds = Number(waitText);
  if (!/^\d+$/.test(waitText) || !Number.isSafeInteger(waitSeconds)) throw new UsageError(`--wait: expected whole seconds, got "${waitText}"`);
  const password = stringOption(values, 'password') ?? io.env.PORTCULLIS_REGISTRY_PASSWORD ?? io.env.PORTCULLIS_ADMIN_PASSWORD;
  const result: ScanSettings = {
    scannerUrl,
    registryUrl: `${values['plain-http'] === true ? 'http' : 'https'}://${registryHost}`,
    dispatcher: new Agent(ca ? { connect: { ca } } : {}),
    waitSeconds,
  };
  if (password !== undefined) {
    result.username = stringOption(values, 'username') ?? io.env.PORTCULLIS_REGISTRY_USERNAME ?? 'admin';
    result.password = password;
  }
  const token = stringOption(values, 'token') ?? io.env.PORTCULLIS_SCANNER_API_TOKEN ?? config.scanner.apiToken;
  if (token !== undefined) result.token = token;
  return result;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** A plain-text table: a header row, then rows; numbers right-aligned. */
function table(header: string[], rows: string[][], numeric: boolean[] = []): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => pad(cell, widths[column] ?? 0, numeric[column])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The summary `portcullis scan` prints. Exported for tests. */
export function formatReport(image: string, report: HarborVulnerabilityReport, all: boolean): string {
  const counts = countSeverities(report);
  const order = [...SEVERITIES].reverse();
  const summary = table(
    ['SEVERITY', 'TOTAL', 'FIXABLE'],
    [...order.map((severity) => [severity, String(counts.bySeverity[severity].total), String(counts.bySeverity[severity].fixable)]), ['Total', String(counts.total), String(counts.fixable)]],
    [false, true, true],
  );
  const sorted = [...report.vulnerabilities].sort(
    (a, b) => severityRank(b.severity === 'None' ? 'Unknown' : b.severity) - severityRank(a.severity === 'None' ? 'Unknown' : a.severity) || a.id.localeCompare(b.id),
  );
  const shown = all ? sorted : sorted.slice(0, TOP_FINDINGS);
  const lines = [
    `Image:     ${image}`,
    `Digest:    ${report.artifact.digest}`,
    `Scanner:   ${report.scanner.name} ${report.scanner.version}, report of ${report.generated_at}`,
    `Severity:  ${counts.total === 0 ? 'None (no vulnerabilities found)' : report.severity}`,
    '',
    summary,
  ];
  if (shown.length > 0) {
    lines.push('', table(['ID', 'SEVERITY', 'PACKAGE', 'INSTALLED', 'FIXED IN', 'STATUS'], shown.map((item) => [item.id, item.severity, item.package, item.version, item.fix_version ?? '-', item.status ?? '-'])));
    if (shown.length < sorted.length) lines.push(`… and ${sorted.length - shown.length} more (--all lists every finding)`);
  }
  return `${lines.join('\n')}\n`;
}

async function call(url: string, init: { method?: string; body?: string; headers?: Record<string, string> }, settings: ScanSettings) {
  const headers = { ...init.headers, ...(settings.token ? { authorization: `Bearer ${settings.token}` } : {}) };
  try {
    return await fetch(url, { ...init, headers, dispatcher: settings.dispatcher, redirect: 'manual' });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    throw new UsageError(`cannot reach the scanner at ${settings.scannerUrl}${cause}`);
  }
}

function errorMessage(json: unknown, fallback: string): string {
  if (typeof json === 'object' && json !== null && 'error' in json && typeof json.error === 'object' && json.error !== null && 'message' in json.error && typeof json.error.message === 'string') {
    return json.error.message;
  }
  return fallback;
}

async function readJson(response: Awaited<ReturnType<typeof fetch>>): Promise<unknown> {
  const text = await response.text();
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return text;
  }
}

function isReport(value: unknown): value is HarborVulnerabilityReport {
  return typeof value === 'object' && value !== null && 'vulnerabilities' in value && Array.isArray(value.vulnerabilities) && 'artifact' in value && 'scanner' in value;
}

export const scanCommand: Command = {
  name: 'scan',
  summary: 'Scan an image with the Portcullis scanner and print a summary',
  usage: USAGE,
  options: {
    scanner: { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    ca: { type: 'string' },
    token: { type: 'string' },
    'plain-http': { type: 'boolean' },
    wait: { type: 'string' },
    all: { type: 'boolean' },
    output: { type: 'string', short: 'o' },
  },
  positionals: true,
  async run({ values, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError(`expected one IMAGE, got ${positionals.length}`);
    const output = stringOption(values, 'output') ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError(`--output: expected table or json, got "${output}"`);
    let reference;
    try {
      reference = parseImageReference(positionals[0] as string);
    } catch (error) {
      if (error instanceof ImageReferenceError) throw new UsageError(error.message);
      throw error;
    }
    const options = settings(values, io, reference.registry);
    try {
      let digest = reference.digest;
      let mediaType = 'application/vnd.oci.image.manifest.v1+json';
      if (digest === undefined) {
        const tag = reference.tag ?? 'latest';
        const registryOptions = { baseUrl: options.registryUrl, dispatcher: options.dispatcher, ...(options.username !== undefined ? { username: options.username, password: options.password ?? '' } : {}) };
        let resolved;
        try {
          resolved = await resolveManifest(registryOptions, reference.repository, tag);
        } catch (error) {
          if (isPortcullisError(error) && error.code === 'UNAUTHORIZED') {
            io.stderr(`portcullis scan: ${error.message}\n`);
            return EXIT.negative;
          }
          throw new UsageError(describeError(error));
        }
        if (!resolved) {
          io.stderr(`portcullis scan: ${reference.repository}:${tag} not found at ${options.registryUrl}\n`);
          return EXIT.negative;
        }
        digest = resolved.digest;
        mediaType = resolved.mediaType || mediaType;
      }
      const image = formatImageReference({ ...reference, digest });
      const scanRequest = {
        registry: {
          url: options.registryUrl,
          ...(options.username !== undefined ? { authorization: `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}` } : {}),
        },
        artifact: { repository: reference.repository, digest, mime_type: mediaType, ...(reference.tag !== undefined ? { tag: reference.tag } : {}) },
      };
      const accepted = await call(`${options.scannerUrl}/api/v1/scan`, { method: 'POST', body: JSON.stringify(scanRequest), headers: { 'content-type': 'application/vnd.scanner.adapter.scan.request+json; version=1.0' } }, options);
      const acceptedBody = await readJson(accepted);
      if (accepted.status !== 202) {
        io.stderr(`portcullis scan: the scanner refused the scan (${accepted.status}): ${errorMessage(acceptedBody, String(acceptedBody))}\n`);
        return accepted.status >= 500 || accepted.status === 401 ? EXIT.usage : EXIT.negative;
      }
      const id = typeof acceptedBody === 'object' && acceptedBody !== null && 'id' in acceptedBody && typeof acceptedBody.id === 'string' ? acceptedBody.id : undefined;
      if (!id) throw new UsageError(`the scanner answered 202 without a scan id: ${JSON.stringify(acceptedBody)}`);
      if (options.waitSeconds === 0) {
        io.stdout(`scan ${id} queued for ${image}\n`);
        return EXIT.ok;
      }
      const deadline = Date.now() + options.waitSeconds * 1000;
      for (;;) {
        const response = await call(`${options.scannerUrl}/api/v1/scan/${encodeURIComponent(id)}/report`, { headers: { accept: VULNERABILITY_REPORT_MIME } }, options);
        const body = await readJson(response);
        if (response.status === 200 && isReport(body)) {
          io.stdout(output === 'json' ? `${JSON.stringify(body, null, 2)}\n` : formatReport(image, body, values.all === true));
          return EXIT.ok;
        }
        if (response.status !== 302) {
          io.stderr(`portcullis scan: ${image}: ${errorMessage(body, `the scanner answered ${response.status}`)}\n`);
          return response.status === 500 ? EXIT.negative : EXIT.usage;
        }
        // The scanner suggests when to ask again; a terminal user should not wait longer than a second.
        const refresh = Number(response.headers.get('refresh-after') ?? '1');
        const wait = Math.min(Number.isFinite(refresh) && refresh > 0 ? refresh : 1, 1) * 1000;
        if (Date.now() + wait > deadline) {
          io.stderr(`portcullis scan: ${image}: no report within ${options.waitSeconds}s (scan ${id} is still queued or running)\n`);
          return EXIT.usage;
        }
        await delay(wait);
      }
    } finally {
      await options.dispatcher.close();
    }
  },
};
