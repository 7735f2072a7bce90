import type { Command } from './command.js';
import { policyLintCommand } from './policy-lint.js';
import { upCommand } from './up.js';
import { versionCommand } from './version.js';

/**
 * Every subcommand of `portcullis`, in the order `portcullis --help` lists them.
 * Each lives in its own file under src/cli/.
 */
export const COMMANDS: readonly Command[] = [upCommand, policyLintCommand, versionCommand];
