import { EXIT, UsageError, type Command } from './command.js';
import { ADMIN_OPTIONS, ADMIN_USAGE, withAdmin } from './registry-admin.js';

export const projectCreateCommand: Command = {
  name: 'project create',
  summary: 'Create a registry project',
  usage: `Usage: portcullis project create NAME [--public] [--no-auto-scan] [connection options]

Creates a project in the registry (POST /api/v2.0/projects). The user creating it becomes its
project admin. Projects are private unless --public; pushes are scanned unless --no-auto-scan.

Options:
  --public              Anyone, even without credentials, may pull from it
  --no-auto-scan        Do not scan images when they are pushed

${ADMIN_USAGE}

Example:
  PORTCULLIS_REGISTRY_PASSWORD=… portcullis project create team --url https://registry.local:5000 --ca ca.crt
`,
  options: { ...ADMIN_OPTIONS, public: { type: 'boolean' }, 'no-auto-scan': { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals, io }) {
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('expected exactly one project NAME');
    return withAdmin(values, io, async (client) => {
      await client.call('POST', '/projects', {
        project_name: name,
        metadata: { public: values.public === true ? 'true' : 'false', auto_scan: values['no-auto-scan'] === true ? 'false' : 'true' },
      });
      io.stdout(`project ${name} created\n`);
      return EXIT.ok;
    });
  },
};
