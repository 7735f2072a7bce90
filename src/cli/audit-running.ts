import { csv, runningRow, runningText, RUNNING_COLUMNS } from '../audit/format.js';
import { EXIT, stringOption, type Command } from './command.js';
import { CONNECTION_OPTIONS, CONNECTION_USAGE, connect, outputFormat } from './audit-query.js';

export const auditRunningCommand: Command = {
  name: 'audit running',
  summary: 'Show running pods that break a policy now (background audit)',
  usage: `Usage: portcullis audit running [--namespace NS] [--output table|json|csv] [connection]

Shows what the background audit found (GET /api/v1/audit/running): every container of a running pod
whose image breaks a policy today, with current verdicts and current policies. The background audit
re-evaluates when a scan finishes, when Trivy's database changes, and when policies change.

Options:
  --namespace NS         Only this namespace
  -o, --output FORMAT    table (default), json (the API body) or csv

${CONNECTION_USAGE}

Exit codes: 0 no violations, 1 violations found, 2 bad usage, unreachable API or refused credentials.

Example:
  portcullis audit running --namespace shop --url https://registry.example.com --ca ca.crt \\
    --username auditor --password "$PW"
`,
  options: { ...CONNECTION_OPTIONS, namespace: { type: 'string' } },
  positionals: false,
  async run({ values, io }) {
    const output = outputFormat(values, ['table', 'json', 'csv']);
    const client = connect(values, io);
    try {
      const report = await client.running({ namespace: stringOption(values, 'namespace') });
      if (output === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else if (output === 'csv') io.stdout(csv(RUNNING_COLUMNS, report.violations.map(runningRow)));
      else io.stdout(runningText(report));
      return report.violations.length > 0 ? EXIT.negative : EXIT.ok;
    } finally {
      await client.close();
    }
  },
};
