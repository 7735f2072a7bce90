import { resolve } from 'node:path';
import { readManifests, reportSource, resourceName, reviewResources, type OfflineDecision } from '../admission/offline.js';
import { formatProblem, loadPolicyDirectory } from '../policy/load.js';
import { EXIT, UsageError, listOption, stringOption, type Command } from './command.js';

export const reviewCommand: Command = {
  name: 'review',
  summary: 'Evaluate manifests offline, exactly as the validating webhook would',
  usage: `Usage: portcullis review -f FILE… [--policies DIR] [--report IMAGE=TRIVY_JSON]… [--output table|json]

Evaluates Kubernetes manifests (multi-document YAML; Pod, Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job, CronJob, ReplicationController) against a policy directory with the same pipeline
the validating webhook runs, and prints the same messages kube-apiserver would show. Verdicts come
from Trivy JSON reports (\`trivy image --format json\`) given per image; an image without a report
is \`unscanned\`, and each policy decides what that means. Objects without a pod spec are skipped.

Options:
  -f, --file FILE            Manifest file (repeatable). Required.
  --policies DIR             Policy directory (default: policies).
  --report IMAGE=TRIVY_JSON  The Trivy report of IMAGE, as written in the manifests (repeatable).
  --namespace NS             Namespace of objects that do not name one (default: default).
  -o, --output FORMAT        table (default) or json.

Exit codes:
  0  every object would be admitted (possibly with warnings)
  1  at least one object would be denied
  2  bad input: unreadable file, YAML error, invalid policies or report, bad options

Example:
  portcullis review -f deploy.yaml --report registry.example.com/app:1.4=trivy-app.json
`,
  options: {
    file: { type: 'string', short: 'f', multiple: true },
    policies: { type: 'string' },
    report: { type: 'string', multiple: true },
    namespace: { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
  positionals: false,
  async run({ values, io }) {
    const files = listOption(values, 'file');
    if (files.length === 0) throw new UsageError('-f FILE is required');
    const output = stringOption(values, 'output') ?? 'table';
    if (output !== 'table' && output !== 'json') throw new UsageError(`--output must be table or json, got "${output}"`);
    const policiesDir = resolve(io.cwd, stringOption(values, 'policies') ?? 'policies');
    const loaded = await loadPolicyDirectory(policiesDir);
    if (!loaded.ok) {
      io.stderr(`portcullis review: the policies in ${policiesDir} are invalid:\n${loaded.problems.map((problem) => `  ${formatProblem(problem)}`).join('\n')}\n`);
      return EXIT.usage;
    }
    const source = reportSource(listOption(values, 'report'), io.cwd);
    const resources = readManifests(files, { cwd: io.cwd, defaultNamespace: stringOption(values, 'namespace') ?? 'default' });
    const decisions = await reviewResources(resources, { set: loaded.set, source, now: new Date() });
    io.stdout(output === 'json' ? `${JSON.stringify(decisions.map(jsonDecision), null, 2)}\n` : renderTable(decisions));
    return decisions.some((decision) => decision.decision === 'deny') ? EXIT.negative : EXIT.ok;
  },
};

function jsonDecision(decision: OfflineDecision) {
  const { resource } = decision;
  return {
    file: resource.file,
    line: resource.line,
    kind: resource.kind,
    name: resource.name,
    namespace: resource.namespace,
    decision: decision.decision,
    ...(decision.message !== undefined ? { message: decision.message } : {}),
    warnings: decision.warnings,
    auditAnnotations: decision.auditAnnotations,
    ...(decision.skipped !== undefined ? { skipped: decision.skipped } : {}),
    results: decision.results,
  };
}

/** One block per object: `DENY  Deployment/web  (namespace, file:line)`, then the message lines indented. */
export function renderTable(decisions: readonly OfflineDecision[]): string {
  const lines: string[] = [];
  for (const decision of decisions) {
    const { resource } = decision;
    const label = decision.decision === 'deny' ? 'DENY ' : decision.decision === 'allow' ? 'ALLOW' : 'SKIP ';
    lines.push(`${label}  ${resourceName(resource)}  (namespace ${resource.namespace}, ${resource.file}:${resource.line})`);
    for (const line of decision.message?.split('\n') ?? []) lines.push(`       ${line}`);
    for (const warning of decision.warnings) lines.push(`       Warning: ${warning}`);
    for (const [key, value] of Object.entries(decision.auditAnnotations)) lines.push(`       Audit: ${key}: ${value}`);
    if (decision.skipped !== undefined) lines.push(`       ${decision.skipped}`);
  }
  const denied = decisions.filter((decision) => decision.decision === 'deny').length;
  const admitted = decisions.filter((decision) => decision.decision === 'allow').length;
  const skipped = decisions.length - denied - admitted;
  lines.push('', `${decisions.length} object(s): ${admitted} admitted, ${denied} denied, ${skipped} skipped`);
  return `${lines.join('\n')}\n`;
}
