import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createAuditClient, type AuditClient } from '../audit/client.js';
import { MAX_PAGE, type DecisionQuery, type StoredDecision } from '../audit/api-schemas.js';
import { csv, decisionRow, decisionsTable, DECISION_COLUMNS } from '../audit/format.js';
import { loadConfig } from '../config/load.js';
import { EXIT, UsageError, stringOption, type CliIO, type Command, type OptionSpec, type OptionValues } from './command.js';

/** Connection options shared by every `portcullis audit …` command. */
export const CONNECTION_OPTIONS: OptionSpec = {
  url: { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  output: { type: 'string', short: 'o' },
};

export const CONNECTION_USAGE = `Connection (flags win over the environment, which wins over the config file):
  --url URL              Address serving the audit API (the registry's address)
                         [PORTCULLIS_AUDIT_CLIENT_URL; default: registry.externalUrl or https://registry.listen]
  --username NAME        A registry user who is system administrator or auditor [PORTCULLIS_AUDIT_CLIENT_USERNAME]
  --password PASSWORD    Their password [PORTCULLIS_AUDIT_CLIENT_PASSWORD]
  --token TOKEN          The audit API token instead of a user [PORTCULLIS_AUDIT_CLIENT_TOKEN]
  --ca FILE              CA certificate (PEM) to trust for an https URL [PORTCULLIS_AUDIT_CLIENT_CA_FILE]
  PORTCULLIS_CONFIG      A config file whose audit.client section holds the same settings`;

/** Builds the API client from flags, then PORTCULLIS_AUDIT_CLIENT_* / the config file. */
export function connect(values: OptionValues, io: CliIO): AuditClient {
  const config = loadConfig({ env: io.env });
  const client = config.audit.client;
  const registryUrl = config.registry.externalUrl ?? `${config.registry.tls.enabled ? 'https' : 'http'}://${config.registry.listen}`;
  const url = stringOption(values, 'url') ?? client.url ?? registryUrl;
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url: expected an http:// or https:// URL, got "${url}"`);
  const caFile = stringOption(values, 'ca') ?? client.caFile;
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(resolve(io.cwd, caFile), 'utf8');
    } catch (error) {
      throw new UsageError(`--ca ${caFile}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return createAuditClient({
    url,
    username: stringOption(values, 'username') ?? client.username,
    password: stringOption(values, 'password') ?? client.password,
    token: stringOption(values, 'token') ?? client.token,
    caPem,
  });
}

export function outputFormat(values: OptionValues, allowed: readonly string[]): string {
  const output = stringOption(values, 'output') ?? 'table';
  if (!allowed.includes(output)) throw new UsageError(`--output: expected one of ${allowed.join(', ')}, got "${output}"`);
  return output;
}

const FILTERS = ['since', 'until', 'namespace', 'kind', 'name', 'image', 'digest', 'policy', 'decision', 'user', 'operation'] as const;

function queryFromFlags(values: OptionValues): DecisionQuery {
  const query: DecisionQuery = {};
  for (const key of FILTERS) {
    const value = stringOption(values, key);
    if (value === undefined) continue;
    if (key === 'decision') {
      if (value !== 'allow' && value !== 'deny') throw new UsageError(`--decision: expected allow or deny, got "${value}"`);
      query.decision = value;
    } else query[key] = value;
  }
  const dryRun = stringOption(values, 'dry-run');
  if (dryRun !== undefined) {
    if (dryRun !== 'true' && dryRun !== 'false') throw new UsageError(`--dry-run: expected true or false, got "${dryRun}"`);
    query.dryRun = dryRun === 'true';
  }
  const cursor = stringOption(values, 'cursor');
  if (cursor !== undefined) query.cursor = cursor;
  return query;
}

export const auditQueryCommand: Command = {
  name: 'audit query',
  summary: 'List admission decisions from the audit record, newest first',
  usage: `Usage: portcullis audit query [filters] [--limit N] [--output table|json|csv] [connection]

Lists recorded admission decisions (validate and mutate, dry runs included and flagged), newest
first, from the audit API (GET /api/v1/audit/decisions). Filters combine (all must match).

Filters:
  --since TIME           ISO 8601 time or a duration back from now (30m, 24h, 7d)
  --until TIME           Same forms; inclusive
  --namespace NS         Namespace of the object
  --kind KIND            Kind of the object (Pod, Deployment, …)
  --name NAME            Name of the object
  --image GLOB           Image as written; * matches any characters (also /), ? one character
  --digest DIGEST        Image digest (sha256:…)
  --policy NAME          Decisions in which this policy failed or warned
  --decision allow|deny  What kube-apiserver was told
  --user NAME            Username of the requester
  --operation OP         CREATE, UPDATE, DELETE or CONNECT
  --dry-run true|false   Only dry runs, or none

Paging and output:
  --limit N              Most decisions to print (default 100); pages of up to ${MAX_PAGE} are fetched
  --cursor CURSOR        Continue after a previous listing (its next cursor)
  -o, --output FORMAT    table (default), json ({items, nextCursor}) or csv (every field)

${CONNECTION_USAGE}

Exit codes: 0 listed (possibly nothing), 2 bad usage, unreachable API or refused credentials.

Example:
  portcullis audit query --namespace shop --decision deny --since 24h --output csv \\
    --url https://registry.example.com --username auditor --password "$PW"
`,
  options: {
    ...CONNECTION_OPTIONS,
    ...Object.fromEntries(FILTERS.map((key) => [key, { type: 'string' as const }])),
    'dry-run': { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
  },
  positionals: false,
  async run({ values, io }) {
    const output = outputFormat(values, ['table', 'json', 'csv']);
    const limitText = stringOption(values, 'limit') ?? '100';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit: expected a positive integer, got "${limitText}"`);
    const query = queryFromFlags(values);
    const client = connect(values, io);
    try {
      const items: StoredDecision[] = [];
      let cursor = query.cursor;
      let nextCursor: string | null = null;
      do {
        const page = await client.decisions({ ...query, cursor, limit: Math.min(MAX_PAGE, limit - items.length) });
        items.push(...page.items);
        nextCursor = page.nextCursor;
        cursor = nextCursor ?? undefined;
      } while (nextCursor !== null && items.length < limit);
      if (output === 'json') io.stdout(`${JSON.stringify({ items, nextCursor }, null, 2)}\n`);
      else if (output === 'csv') io.stdout(csv(DECISION_COLUMNS, items.map(decisionRow)));
      else {
        io.stdout(items.length === 0 ? 'No decisions match.\n' : decisionsTable(items));
        if (nextCursor) io.stderr(`More decisions: add --cursor ${nextCursor}\n`);
      }
      return EXIT.ok;
    } finally {
      await client.close();
    }
  },
};
