import { EXIT, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, adminOutput, listAll, table, withAdmin, ROLE_IDS, field } from './registry-admin.js';

export const projectListCommand: Command = {
  name: 'project list',
  summary: 'List the registry projects you can see',
  usage: `Usage: portcullis project list [connection options]

Lists the projects visible to the user (all of them for a system admin): name, visibility,
auto-scan and your role.

${ADMIN_USAGE}

Example:
  portcullis project list -o json
`,
  options: ADMIN_OPTIONS,
  positionals: false,
  async run({ values, io }) {
    const output = adminOutput(values);
    return withAdmin(values, io, async (client) => {
      const projects = await listAll(client, '/projects');
      if (output === 'json') io.stdout(`${JSON.stringify(projects, null, 2)}\n`);
      else {
        const roleNames = Object.fromEntries(Object.entries(ROLE_IDS).map(([roleName, id]) => [String(id), roleName]));
        const rows = projects.map((project) => {
          const metadata = typeof project === 'object' && project !== null && 'metadata' in project ? project.metadata : undefined;
          return [field(project, 'name'), field(metadata, 'public') === 'true' ? 'public' : 'private', field(metadata, 'auto_scan') === 'false' ? 'off' : 'on', roleNames[field(project, 'current_user_role_id')] ?? '-', field(project, 'repo_count')];
        });
        io.stdout(table(['NAME', 'VISIBILITY', 'AUTO-SCAN', 'YOUR ROLE', 'REPOSITORIES'], rows));
      }
      return EXIT.ok;
    });
  },
};
