import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandContext {
  values: OptionValues;
  positionals: string[];
  io: CliIO;
}

/**
 * One subcommand. `name` is the words that select it (`policy lint`); `usage` is the whole
 * `--help` text: synopsis, what it does, options, exit codes and an example.
 */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec;
  /** Whether positional arguments are accepted (files, directories, images). */
  positionals: boolean;
  /** Returns the process exit code: 0 success, 1 a negative answer (denied, invalid), 2 bad usage or input. */
  run(context: CommandContext): Promise<number>;
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, negative: 1, usage: 2 } as const;

export class UsageError extends Error {}

/** Parses `args` for `command`; throws UsageError with a message naming the offending option. */
export function parseCommandArgs(command: Command, args: string[]): { values: OptionValues; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: command.options, allowPositionals: command.positionals, strict: true });
    return { values: parsed.values as OptionValues, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Reads a string option; throws UsageError when `required` and missing. */
export function stringOption(values: OptionValues, name: string, required: true): string;
export function stringOption(values: OptionValues, name: string, required?: false): string | undefined;
export function stringOption(values: OptionValues, name: string, required = false): string | undefined {
  const value = values[name];
  if (typeof value === 'string') return value;
  if (required) throw new UsageError(`--${name} is required`);
  return undefined;
}

/** Reads a repeatable string option as a list (empty when absent). */
export function listOption(values: OptionValues, name: string): string[] {
  const value = values[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}
