import { EXIT, UsageError, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, withAdmin } from './registry-admin.js';

export const projectDeleteCommand: Command = {
  name: 'project delete',
  summary: 'Delete an empty registry project',
  usage: `Usage: portcullis project delete NAME [connection options]

Deletes a project with its members and robot accounts. The registry refuses (exit 1) while the
project still holds repositories.

${ADMIN_USAGE}

Example:
  portcullis project delete old-team
`,
  options: ADMIN_OPTIONS,
  positionals: true,
  async run({ values, positionals, io }) {
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('expected exactly one project NAME');
    return withAdmin(values, io, async (client) => {
      await client.call('DELETE', `/projects/${encodeURIComponent(name)}`);
      io.stdout(`project ${name} deleted\n`);
      return EXIT.ok;
    });
  },
};
