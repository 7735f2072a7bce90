import { describe, expect, it } from 'vitest';
import type { CliIO, Command } from './command.js';
import { COMMANDS } from './commands.js';
import { main } from './main.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: process.cwd() };
  return { value, out: () => out.join(''), err: () => err.join('') };
}

const echo: Command = {
  name: 'demo echo',
  summary: 'Echo the arguments',
  usage: 'Usage: portcullis demo echo [--loud] WORD…\n',
  options: { loud: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals, io: cli }) {
    cli.stdout(`${values.loud ? positionals.join(' ').toUpperCase() : positionals.join(' ')}\n`);
    return 0;
  },
};

describe('portcullis CLI dispatch', () => {
  it('runs the command selected by its words', async () => {
    const cli = io();
    expect(await main(['demo', 'echo', '--loud', 'hi', 'there'], cli.value, [echo])).toBe(0);
    expect(cli.out()).toBe('HI THERE\n');
  });

  it('prints the command usage for --help and exits 0', async () => {
    const cli = io();
    expect(await main(['demo', 'echo', '--help'], cli.value, [echo])).toBe(0);
    expect(cli.out()).toContain('Usage: portcullis demo echo');
  });

  it('exits 2 naming the bad option', async () => {
    const cli = io();
    expect(await main(['demo', 'echo', '--quiet'], cli.value, [echo])).toBe(2);
    expect(cli.err()).toMatch(/Unknown option '--quiet'.*\n.*portcullis demo echo --help/);
  });

  it('lists the sub-commands of a group when only the group is given', async () => {
    const cli = io();
    expect(await main(['demo'], cli.value, [echo])).toBe(2);
    expect(cli.err()).toContain('expected one of: echo');
  });

  it('gives every real command a usage text that starts with its synopsis', () => {
    for (const command of COMMANDS) {
      expect(command.usage.startsWith(`Usage: portcullis ${command.name}`), command.name).toBe(true);
      expect(command.summary.length).toBeGreaterThan(0);
    }
  });
});
