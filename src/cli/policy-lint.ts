import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { formatProblem, loadPolicyDirectory, parsePolicyDocuments, type PolicyLoadResult, type PolicyProblem } from '../policy/load.js';
import { EXIT, UsageError, type Command } from './command.js';

async function lintPath(path: string, cwd: string, now: Date): Promise<PolicyLoadResult | undefined> {
  const absolute = resolve(cwd, path);
  const info = await stat(absolute).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isDirectory()) return parsePolicyDocuments(await readFile(absolute, 'utf8'), path, { now });
  // Problems name files as the user wrote the path, so they can be clicked in a terminal or CI log.
  const rename = (problem: PolicyProblem): PolicyProblem => {
    const inside = relative(absolute, problem.file);
    return { ...problem, file: inside === '' ? path : join(path, inside) };
  };
  const result = await loadPolicyDirectory(absolute, { now });
  return result.ok ? { ...result, warnings: result.warnings.map(rename) } : { ok: false, problems: result.problems.map(rename) };
}

export const policyLintCommand: Command = {
  name: 'policy lint',
  summary: 'Check policy directories against the policy schema',
  usage: `Usage: portcullis policy lint DIR|FILE...

Validates every *.yaml / *.yml policy document in each DIR (not recursive) or FILE against the
policy schema (policies/policy.schema.json) and the rules the schema cannot express: unique names
per kind, label selector expressions, exceptions naming existing policies. Each problem is one line,
\`file:line:col /field: what is wrong\`. Warnings (exceptions or allowlist entries that expired or
expire within 14 days) are printed but do not fail the check.

Options:
  --now TIME   Judge expiry as of TIME (RFC 3339) instead of the current time.
  -h, --help   Show this help.

Exit codes:
  0  every path holds a valid policy set (warnings may be printed)
  1  some document is invalid
  2  bad usage: no path given, a path does not exist, a bad --now

Example:
  portcullis policy lint policies/
  portcullis policy lint policies/ team-policies/exceptions.yaml
`,
  options: { now: { type: 'string' } },
  positionals: true,
  async run({ values, positionals, io }) {
    if (positionals.length === 0) throw new UsageError('expected at least one policy directory or file');
    let now = new Date();
    if (typeof values.now === 'string') {
      now = new Date(values.now);
      if (Number.isNaN(now.getTime())) throw new UsageError(`--now: expected an RFC 3339 time, got "${values.now}"`);
    }
    let invalid = false;
    for (const path of positionals) {
      const result = await lintPath(path, io.cwd, now);
      if (!result) {
        io.stderr(`portcullis policy lint: ${path}: no such file or directory\n`);
        return EXIT.usage;
      }
      if (!result.ok) {
        invalid = true;
        for (const problem of result.problems) io.stdout(`${formatProblem(problem)}\n`);
        const errors = result.problems.filter((problem) => problem.severity === 'error').length;
        io.stdout(`${path}: invalid (${errors} problem${errors === 1 ? '' : 's'})\n`);
        continue;
      }
      for (const warning of result.warnings) io.stdout(`${formatProblem(warning)}\n`);
      const { set } = result;
      io.stdout(
        `${path}: valid (${set.imagePolicies.length} ImagePolicy, ${set.pullSecretPolicies.length} PullSecretPolicy, ` +
          `${set.exceptions.length} PolicyException${result.warnings.length > 0 ? `, ${result.warnings.length} warning${result.warnings.length === 1 ? '' : 's'}` : ''})\n`,
      );
    }
    return invalid ? EXIT.negative : EXIT.ok;
  },
};
