import { EXIT, UsageError, stringOption, listOption, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, adminOutput, withAdmin, record, ROBOT_ACTIONS } from './registry-admin.js';

export const robotCreateCommand: Command = {
  name: 'robot create',
  summary: 'Create a robot account for a registry project',
  usage: `Usage: portcullis robot create PROJECT NAME --action ACTION… [--duration DAYS] [connection options]

Creates the robot account robot$PROJECT+NAME with the given repository actions and prints its
secret. The secret is shown only this once; \`portcullis robot refresh\` issues a new one.

Options:
  --action ACTION       pull, push or delete; repeat for several
  --duration DAYS       Days until it expires (default 30); --duration=-1 never expires
  --description TEXT    What it is for

${ADMIN_USAGE}

Example:
  portcullis robot create team ci --action pull --action push --duration 90
`,
  options: { ...ADMIN_OPTIONS, action: { type: 'string', multiple: true }, duration: { type: 'string' }, description: { type: 'string' } },
  positionals: true,
  async run({ values, positionals, io }) {
    const [project, name, ...extra] = positionals;
    if (!project || !name || extra.length > 0) throw new UsageError('expected PROJECT and NAME');
    const actions = listOption(values, 'action');
    if (actions.length === 0) throw new UsageError('--action is required (pull, push or delete)');
    const wrong = actions.find((action) => !ROBOT_ACTIONS.includes(action));
    if (wrong) throw new UsageError(`--action: expected pull, push or delete, got "${wrong}"`);
    const durationText = stringOption(values, 'duration') ?? '30';
    if (!/^(-1|[0-9]+)$/.test(durationText)) throw new UsageError(`--duration: expected a number of days or -1, got "${durationText}"`);
    const output = adminOutput(values);
    return withAdmin(values, io, async (client) => {
      const { json } = await client.call('POST', '/robots', {
        name,
        description: stringOption(values, 'description') ?? '',
        level: 'project',
        duration: Number(durationText),
        permissions: [{ kind: 'project', namespace: project, access: actions.map((action) => ({ resource: 'repository', action })) }],
      });
      const created = record(json);
      if (output === 'json') io.stdout(`${JSON.stringify(created, null, 2)}\n`);
      else {
        const expires = Number(created.expires_at);
        io.stdout(`robot ${String(created.name)} created (id ${String(created.id)}, ${expires === -1 ? 'never expires' : `expires ${new Date(expires * 1000).toISOString()}`})\n`);
        io.stdout(`secret: ${String(created.secret)}\n(shown once: store it now)\n`);
      }
      return EXIT.ok;
    });
  },
};
