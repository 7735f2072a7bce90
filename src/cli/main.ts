import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeError, isPortcullisError } from '../errors.js';
import { EXIT, UsageError, parseCommandArgs, type CliIO, type Command } from './command.js';
import { COMMANDS } from './commands.js';

function processIO(): CliIO {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
  };
}

export function overview(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  const lines = commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return [
    'Usage: portcullis <command> [options]',
    '',
    'Admission control for Kubernetes: vulnerability gates, pull secrets, a private registry and a',
    'Trivy orchestrator. Run `portcullis <command> --help` for the options of a command.',
    '',
    'Commands:',
    ...lines,
    '',
  ].join('\n');
}

/** Finds the command whose words are the longest prefix of `argv`. */
export function findCommand(commands: readonly Command[], argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (words.every((word, index) => argv[index] === word) && (!best || words.length > best.command.name.split(' ').length)) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

/** Runs the CLI and returns the exit code. Never throws. */
export async function main(argv: string[], io: CliIO = processIO(), commands: readonly Command[] = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    const topic = argv[0] === 'help' ? findCommand(commands, argv.slice(1)) : undefined;
    io.stdout(topic ? `${topic.command.usage.trimEnd()}\n` : overview(commands));
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  const found = findCommand(commands, argv);
  if (!found) {
    const group = commands.filter((command) => command.name.startsWith(`${argv[0]} `));
    if (group.length > 0) {
      io.stderr(`portcullis ${argv[0]}: expected one of: ${group.map((command) => command.name.split(' ').slice(1).join(' ')).join(', ')}\n`);
      io.stderr(overview(group));
    } else {
      io.stderr(`portcullis: unknown command "${argv[0]}"\n\n${overview(commands)}`);
    }
    return EXIT.usage;
  }
  const { command, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(`${command.usage.trimEnd()}\n`);
    return EXIT.ok;
  }
  try {
    const { values, positionals } = parseCommandArgs(command, rest);
    return await command.run({ values, positionals, io });
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`portcullis ${command.name}: ${error.message}\nRun \`portcullis ${command.name} --help\` for usage.\n`);
      return EXIT.usage;
    }
    if (isPortcullisError(error)) {
      io.stderr(`portcullis ${command.name}: ${error.code}: ${error.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`portcullis ${command.name}: ${describeError(error)}\n`);
    return EXIT.usage;
  }
}

function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (!invoked) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    // A script path that cannot be resolved is not this module.
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
