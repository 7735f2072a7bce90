/**
 * Entry point of a registry child process for tests and benchmarks: runs `portcullis registry ARGS`
 * through src/cli/registry.ts alone, without loading every other command (which makes start-up
 * several seconds faster). Run as `node --import tsx test/helpers/registry-process.ts --data-dir …`.
 */
import { parseCommandArgs } from '../../src/cli/command.js';
import { registryCommand } from '../../src/cli/registry.js';

const { values, positionals } = parseCommandArgs(registryCommand, process.argv.slice(2));
process.exitCode = await registryCommand.run({
  values,
  positionals,
  io: { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text), env: process.env, cwd: process.cwd() },
});
