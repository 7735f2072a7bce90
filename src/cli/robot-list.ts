import { EXIT, UsageError, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, adminOutput, listAll, table, withAdmin, record } from './registry-admin.js';

export const robotListCommand: Command = {
  name: 'robot list',
  summary: 'List the robot accounts of a registry project',
  usage: `Usage: portcullis robot list PROJECT [connection options]

Lists the robot accounts of PROJECT: id, name, actions, expiry and whether disabled.

${ADMIN_USAGE}

Example:
  portcullis robot list team
`,
  options: ADMIN_OPTIONS,
  positionals: true,
  async run({ values, positionals, io }) {
    const [project, ...extra] = positionals;
    if (!project || extra.length > 0) throw new UsageError('expected one PROJECT');
    const output = adminOutput(values);
    return withAdmin(values, io, async (client) => {
      const found = record((await client.call('GET', `/projects/${encodeURIComponent(project)}`)).json);
      const robots = await listAll(client, `/robots?q=${encodeURIComponent(`Level=project,ProjectID=${String(found.project_id)}`)}`);
      if (output === 'json') io.stdout(`${JSON.stringify(robots, null, 2)}\n`);
      else {
        const rows = robots.map((value) => {
          const robot = record(value);
          const permissions = Array.isArray(robot.permissions) ? robot.permissions.map(record) : [];
          const actions = permissions.flatMap((permission) => (Array.isArray(permission.access) ? permission.access.map((access) => String(record(access).action)) : []));
          const expires = Number(robot.expires_at);
          return [String(robot.id), String(robot.name), actions.join(','), expires === -1 ? 'never' : new Date(expires * 1000).toISOString(), robot.disable === true ? 'yes' : 'no'];
        });
        io.stdout(table(['ID', 'NAME', 'ACTIONS', 'EXPIRES', 'DISABLED'], rows));
      }
      return EXIT.ok;
    });
  },
};
