import { readFileSync } from 'node:fs';
import type { Command } from './command.js';

export function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'Print the Portcullis version',
  usage: `Usage: portcullis version

Prints the version of this Portcullis build.
`,
  options: {},
  positionals: false,
  async run({ io }) {
    io.stdout(`portcullis ${packageVersion()}\n`);
    return 0;
  },
};
