import { summaryText } from '../audit/format.js';
import { EXIT, UsageError, stringOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, connect, outputFormat } from './audit-query.js';

export const auditSummaryCommand: Command = {
  name: 'audit summary',
  summary: 'Count admission decisions by decision, policy, namespace and image over a window',
  usage: `Usage: portcullis audit summary [--since 24h] [--until TIME] [--top N] [--output table|json] [connection]

Summarises the audit record over a time window (GET /api/v1/audit/summary): decisions allowed and
denied (dry runs counted and shown), results per policy, decisions per namespace and image, and the
most denied images with the worst CVEs named in their denials.

Options:
  --since TIME           Start of the window: ISO 8601 or a duration back from now (default 24h)
  --until TIME           End of the window (default now)
  --top N                Longest lists to show (1-100, default 10)
  -o, --output FORMAT    table (default) or json (the API body)

${CONNECTION_USAGE}

Exit codes: 0 summarised, 2 bad usage, unreachable API or refused credentials.

Example:
  portcullis audit summary --since 7d --url https://registry.example.com --token "$AUDIT_TOKEN"
`,
  options: { ...CONNECTION_OPTIONS, since: { type: 'string' }, until: { type: 'string' }, top: { type: 'string' } },
  positionals: false,
  async run({ values, io }) {
    const output = outputFormat(values, ['table', 'json']);
    const topText = stringOption(values, 'top');
    const top = topText === undefined ? undefined : Number(topText);
    if (top !== undefined && (!Number.isInteger(top) || top < 1 || top > 100)) throw new UsageError(`--top: expected an integer from 1 to 100, got "${topText}"`);
    const client = connect(values, io);
    try {
      const summary = await client.summary({ since: stringOption(values, 'since'), until: stringOption(values, 'until'), top });
      io.stdout(output === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : summaryText(summary));
      return EXIT.ok;
    } finally {
      await client.close();
    }
  },
};
