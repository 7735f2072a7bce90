import { EXIT, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, withAdmin, robotId } from './registry-admin.js';

export const robotDeleteCommand: Command = {
  name: 'robot delete',
  summary: 'Delete a robot account',
  usage: `Usage: portcullis robot delete ID [connection options]

Deletes robot ID; its secret stops working at once.

${ADMIN_USAGE}

Example:
  portcullis robot delete 3
`,
  options: ADMIN_OPTIONS,
  positionals: true,
  async run({ values, positionals, io }) {
    const id = robotId(positionals);
    return withAdmin(values, io, async (client) => {
      await client.call('DELETE', `/robots/${id}`);
      io.stdout(`robot ${id} deleted\n`);
      return EXIT.ok;
    });
  },
};
