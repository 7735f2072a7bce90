import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CONFIG_FILE_ENV, envBindings, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { UsageError, stringOption, type CliIO, type OptionValues } from './command.js';

/**
 * The configuration as a client command sees it: the config file and PORTCULLIS_* variables, less
 * the client-only variables (PORTCULLIS_SCANNER_URL, PORTCULLIS_CA_FILE) that are not config fields.
 */
export function clientConfig(env: CliIO['env']): Config {
  const known = new Set([CONFIG_FILE_ENV, ...envBindings().map((binding) => binding.name)]);
  return loadConfig({ env: Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('PORTCULLIS_') || known.has(name))) });
}

/**
 * The scanner a client command talks to: `--scanner`, else PORTCULLIS_SCANNER_URL, else the
 * configured listen address; and the CA to trust (`--ca`, else PORTCULLIS_CA_FILE). Throws
 * UsageError naming the option for a URL that is not http(s) or a CA file that cannot be read.
 */
export function scannerTarget(values: OptionValues, io: CliIO, config: Config): { url: string; ca?: string } {
  const url = (stringOption(values, 'scanner') ?? io.env.PORTCULLIS_SCANNER_URL ?? `https://${config.scanner.listen}`).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--scanner: expected an http:// or https:// URL, got "${url}"`);
  const caFile = stringOption(values, 'ca') ?? io.env.PORTCULLIS_CA_FILE;
  if (!caFile) return { url };
  try {
    return { url, ca: readFileSync(resolve(io.cwd, caFile), 'utf8') };
  } catch (error) {
    throw new UsageError(`--ca ${caFile}: cannot read: ${describeError(error)}`);
  }
}
