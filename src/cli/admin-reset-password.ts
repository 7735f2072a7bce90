import { existsSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { openDatabase } from '../db/database.js';
import { describeError, PortcullisError } from '../errors.js';
import { Generation } from '../registry/auth/cache.js';
import { systemClock } from '../registry/auth/clock.js';
import { randomSecret } from '../registry/auth/password.js';
import { authDb } from '../registry/auth/tables.js';
import { UserStore } from '../registry/auth/users.js';
import { EXIT, UsageError, stringOption, type Command } from './command.js';

export const adminResetPasswordCommand: Command = {
  name: 'admin reset-password',
  summary: "Set a registry user's password directly in the database (a lost admin password)",
  usage: `Usage: portcullis admin reset-password [--user NAME] [--from-config] [--data-dir DIR] [--config FILE]

Sets the password of a registry user (default: admin) directly in the registry's database: the
way back in when the admin password, printed once on first start and stored only as a hash, is
lost. It needs what the registry itself uses (the data directory with its SQLite file, or
database.url), so only someone with access to the registry's storage can run it: on the host, or
with \`kubectl exec\` in the registry's pod. The new password is generated and printed once; with
--from-config it is the configured admin password instead (PORTCULLIS_ADMIN_PASSWORD or
registry.adminPassword), for automation. Refresh tokens issued for the old password stop working;
a running registry stops accepting the old password within 5 seconds.

Options:
  --user NAME       The user (default admin)
  --from-config     Set the configured admin password (PORTCULLIS_ADMIN_PASSWORD) instead of a new
                    one (for the admin only)
  --data-dir DIR    State directory of the registry (default from the configuration, ./.portcullis)
  --config FILE     YAML configuration (default: PORTCULLIS_CONFIG); flags win over it

Exit codes:
  0  the password was set
  2  bad usage, no registry database there, no such user, or --from-config without a configured password

Example:
  portcullis admin reset-password --data-dir /var/lib/portcullis
`,
  options: {
    user: { type: 'string' },
    'from-config': { type: 'boolean' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
  },
  positionals: false,
  async run({ values, io }) {
    const dataDir = stringOption(values, 'data-dir');
    const config = loadConfig({ file: stringOption(values, 'config'), env: io.env, overrides: dataDir ? { dataDir } : {} });
    const username = stringOption(values, 'user') ?? 'admin';
    const configured = config.registry.adminPassword;
    if (values['from-config'] === true && configured === undefined) {
      throw new UsageError('--from-config: no admin password is configured (set PORTCULLIS_ADMIN_PASSWORD or registry.adminPassword)');
    }
    if (values['from-config'] === true && username !== 'admin') {
      throw new UsageError(`--from-config sets the admin's configured password, not ${JSON.stringify(username)}'s: leave it out to generate one`);
    }
    // Opening SQLite creates the file: a mistyped directory must not become an empty registry.
    if (!config.database.url && !existsSync(config.database.sqlitePath)) {
      throw new PortcullisError('NOT_FOUND', `no registry database at ${config.database.sqlitePath}: has the registry run with this data directory?`);
    }
    const database = openDatabase<unknown>(config.database);
    try {
      // No migrations here: the database is the registry's, at the schema its own version applied.
      const users = new UserStore(authDb(database.db), systemClock, new Generation());
      const user = await users.findByName(username).catch((error: unknown) => {
        throw new PortcullisError('NOT_FOUND', `no registry users in the database (${describeError(error)}): has the registry run with this configuration?`, { cause: error });
      });
      if (!user) throw new PortcullisError('NOT_FOUND', `user ${JSON.stringify(username)} does not exist`);
      if (values['from-config'] === true && configured !== undefined) {
        await users.setPassword(user.id, configured);
        io.stdout(`password of ${username} set to the configured admin password\n`);
      } else {
        const password = randomSecret(24);
        await users.setPassword(user.id, password);
        io.stdout(`new password of ${username} (shown once): ${password}\n`);
      }
      return EXIT.ok;
    } finally {
      await database.close();
    }
  },
};
