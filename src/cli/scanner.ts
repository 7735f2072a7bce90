import { Agent, fetch } from 'undici';
import { EXIT, UsageError, stringOption, type Command } from './command.js';
import { clientConfig, scannerTarget } from './client-settings.js';

/**
 * The configuration (for defaults such as scanner.listen), read from the config file and the
 * configuration variables only: the client variables this command reads (PORTCULLIS_SCANNER_URL,
 * PORTCULLIS_REGISTRY_PASSWORD, PORTCULLIS_CA_FILE, …) are not configuration fields.
 */
const USAGE = `Usage: portcullis scanner status [options]

Shows whether the scanner can scan: the Trivy version, the vulnerability database and when it was
updated, and the scan queue by status. When Trivy or its database is missing, says why (the same
reason /readyz and every "unavailable" verdict carry).

Options:
  --scanner URL          The scanner role [PORTCULLIS_SCANNER_URL; default: https://scanner.listen]
  --ca FILE              CA certificate (PEM) to trust [PORTCULLIS_CA_FILE]
  --token TOKEN          Scanner API token when scanner.apiToken is set [PORTCULLIS_SCANNER_API_TOKEN]
  -o, --output FORMAT    table (default) or json

Exit codes: 0 ready, 1 not ready (the reason is printed), 2 bad usage or unreachable scanner.

Example:
  portcullis scanner status --ca .portcullis/certs/ca.crt
`;

interface SystemInfo {
  ready: boolean;
  status: string;
  version?: string;
  dbUpdatedAt?: string;
  dbNextUpdate?: string;
  queue?: Record<string, number>;
}

function isSystemInfo(value: unknown): value is SystemInfo {
  return typeof value === 'object' && value !== null && 'ready' in value && typeof value.ready === 'boolean' && 'status' in value && typeof value.status === 'string';
}

export const scannerStatusCommand: Command = {
  name: 'scanner status',
  summary: 'Show whether Trivy and its vulnerability database are ready, and the scan queue',
  usage: USAGE,
  options: { scanner: { type: 'string' }, ca: { type: 'string' }, token: { type: 'string' }, output: { type: 'string', short: 'o' } },
  positionals: false,
  async run({ values, io }) {
    const config = clientConfig(io.env);
    const output = stringOption(values, 'output') ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError(`--output: expected table or json, got "${output}"`);
    const { url, ca } = scannerTarget(values, io, config);
    const token = stringOption(values, 'token') ?? io.env.PORTCULLIS_SCANNER_API_TOKEN ?? config.scanner.apiToken;
    const dispatcher = new Agent(ca ? { connect: { ca } } : {});
    try {
      let response;
      try {
        response = await fetch(`${url}/api/v1/portcullis/systeminfo`, { dispatcher, headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
        throw new UsageError(`cannot reach the scanner at ${url}${cause}`);
      }
      const body: unknown = await response.json().catch(() => undefined);
      if (!response.ok || !isSystemInfo(body)) throw new UsageError(`the scanner at ${url} answered ${response.status}`);
      if (output === 'json') {
        io.stdout(`${JSON.stringify(body, null, 2)}\n`);
      } else {
        const lines = [`Status:    ${body.ready ? 'ready' : 'NOT READY'}`, `Detail:    ${body.status}`];
        if (body.version) lines.push(`Trivy:     ${body.version}`);
        if (body.dbUpdatedAt) lines.push(`DB:        updated ${body.dbUpdatedAt}${body.dbNextUpdate ? `, next update ${body.dbNextUpdate}` : ''}`);
        if (body.queue) lines.push(`Queue:     ${Object.entries(body.queue).map(([status, count]) => `${status} ${count}`).join(', ')}`);
        io.stdout(`${lines.join('\n')}\n`);
      }
      return body.ready ? EXIT.ok : EXIT.negative;
    } finally {
      await dispatcher.close();
    }
  },
};
