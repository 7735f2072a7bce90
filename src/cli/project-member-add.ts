import { EXIT, UsageError, stringOption, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, withAdmin, ROLE_IDS } from './registry-admin.js';

export const projectMemberAddCommand: Command = {
  name: 'project member add',
  summary: 'Give a user a role in a registry project',
  usage: `Usage: portcullis project member add PROJECT USER --role ROLE [connection options]

Adds USER to PROJECT with ROLE, one of projectAdmin, maintainer, developer, guest, limitedGuest
(Harbor's roles: see docs/registry.md for what each may do).

Options:
  --role ROLE           The role to give

${ADMIN_USAGE}

Example:
  portcullis project member add team alice --role developer
`,
  options: { ...ADMIN_OPTIONS, role: { type: 'string' } },
  positionals: true,
  async run({ values, positionals, io }) {
    const [project, user, ...extra] = positionals;
    if (!project || !user || extra.length > 0) throw new UsageError('expected PROJECT and USER');
    const role = stringOption(values, 'role', true);
    const roleId = ROLE_IDS[role];
    if (roleId === undefined) throw new UsageError(`--role: expected one of ${Object.keys(ROLE_IDS).join(', ')}, got "${role}"`);
    return withAdmin(values, io, async (client) => {
      await client.call('POST', `/projects/${encodeURIComponent(project)}/members`, { role_id: roleId, member_user: { username: user } });
      io.stdout(`${user} is now ${role} of ${project}\n`);
      return EXIT.ok;
    });
  },
};
