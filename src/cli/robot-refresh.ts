import { EXIT, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, withAdmin, record, robotId } from './registry-admin.js';

export const robotRefreshCommand: Command = {
  name: 'robot refresh',
  summary: 'Give a robot account a new secret',
  usage: `Usage: portcullis robot refresh ID [connection options]

Replaces the secret of robot ID with a new random one and prints it (once). The old secret stops
working at once.

${ADMIN_USAGE}

Example:
  portcullis robot refresh 3
`,
  options: ADMIN_OPTIONS,
  positionals: true,
  async run({ values, positionals, io }) {
    const id = robotId(positionals);
    return withAdmin(values, io, async (client) => {
      const { json } = await client.call('PATCH', `/robots/${id}`, {});
      io.stdout(`secret: ${String(record(json).secret)}\n(shown once: store it now)\n`);
      return EXIT.ok;
    });
  },
};
