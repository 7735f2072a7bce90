import ipaddr from 'ipaddr.js';
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { PortcullisError, describeError } from '../errors.js';
import { configSchema, defaultConfig, type Config } from './schema.js';

/** Environment variable naming the YAML config file. It is not itself a config field. */
export const CONFIG_FILE_ENV = 'PORTCULLIS_CONFIG';
const DEFAULT_DATA_DIR = './.portcullis';

export interface LoadConfigOptions {
  /** YAML file to read; PORTCULLIS_CONFIG from `env` when absent; no file when neither is set. */
  file?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Values that win over everything else (command-line flags). Same shape as the file. */
  overrides?: Record<string, unknown>;
}

interface EnvBinding {
  name: string;
  path: string[];
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array';
}

type SchemaNode = {
  type?: string;
  properties?: Record<string, SchemaNode>;
  'x-env'?: string;
};

const snake = (segment: string) => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Every config leaf with the environment variable that sets it: PORTCULLIS_ + the path in UPPER_SNAKE. */
export function envBindings(): EnvBinding[] {
  const bindings: EnvBinding[] = [];
  const walk = (node: SchemaNode, path: string[]) => {
    if (node.type === 'object' && node.properties) {
      for (const [key, child] of Object.entries(node.properties)) walk(child, [...path, key]);
      return;
    }
    const name = node['x-env'] ?? `PORTCULLIS_${path.map(snake).join('_')}`;
    bindings.push({ name, path, type: (node.type ?? 'string') as EnvBinding['type'] });
  };
  walk(configSchema as unknown as SchemaNode, []);
  return bindings;
}

function parseEnvValue(binding: EnvBinding, raw: string): { value?: unknown; problem?: string } {
  switch (binding.type) {
    case 'integer':
    case 'number': {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) return { problem: `expected a number, got "${raw}"` };
      return { value };
    }
    case 'boolean':
      if (/^(true|1|yes)$/i.test(raw)) return { value: true };
      if (/^(false|0|no)$/i.test(raw)) return { value: false };
      return { problem: `expected true or false, got "${raw}"` };
    case 'array':
      return { value: raw.split(',').map((item) => item.trim()).filter((item) => item !== '') };
    default:
      return { value: raw };
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge where `over` wins; arrays are replaced, not concatenated. */
export function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeDeep(current, value) : value;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Fields whose values must never be echoed into an error (and from there into logs). */
const SECRET_FIELD = /password|token|secret|key$/i;

function shown(path: string, value: unknown): string {
  return SECRET_FIELD.test(path.split('/').pop() ?? '') ? '[redacted]' : JSON.stringify(value);
}

function formatAjvError(error: ErrorObject, source: (path: string) => string): string {
  const path = error.instancePath || '/';
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return `${source(path)}${path}: unknown field "${extra}"`;
  }
  if (error.keyword === 'enum') {
    const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
    return `${source(path)}${path}: must be one of ${allowed}, got ${shown(path, error.data)}`;
  }
  return `${source(path)}${path}: ${error.message ?? 'is invalid'}, got ${shown(path, error.data)}`;
}

/**
 * Builds the one configuration: defaults ← YAML file ← PORTCULLIS_* environment ← overrides.
 * Validates the result against the schema and reports every problem at once in a single
 * CONFIG_INVALID error (one line each). The result is deeply frozen.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? {};
  const problems: string[] = [];
  const file = options.file ?? env[CONFIG_FILE_ENV];

  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (parsed === null || parsed === undefined) fromFile = {};
      else if (isPlainObject(parsed)) fromFile = parsed;
      else problems.push(`${file}: expected a mapping at the top level, got ${Array.isArray(parsed) ? 'a list' : typeof parsed}`);
    } catch (error) {
      // The YAML parser quotes the lines around a mistake, which may hold a password: keep only
      // its first line, which says what is wrong and where.
      problems.push(`${file}: ${describeError(error).split('\n')[0] ?? 'cannot be read'}`);
    }
  }

  const fromEnv: Record<string, unknown> = {};
  const envSource = new Map<string, string>();
  const bindings = envBindings();
  const known = new Set([CONFIG_FILE_ENV, ...bindings.map((b) => b.name)]);
  for (const binding of bindings) {
    const raw = env[binding.name];
    if (raw === undefined) continue;
    const { value, problem } = parseEnvValue(binding, raw);
    if (problem) problems.push(`${binding.name}: ${problem}`);
    else setPath(fromEnv, binding.path, value);
    envSource.set(`/${binding.path.join('/')}`, binding.name);
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('PORTCULLIS_') && !known.has(name)) {
      problems.push(`${name}: unknown environment variable (docs/configuration.md lists the known ones)`);
    }
  }

  const layered = mergeDeep(mergeDeep(fromFile, fromEnv), options.overrides ?? {});
  const dataDir = typeof layered.dataDir === 'string' && layered.dataDir !== '' ? layered.dataDir : DEFAULT_DATA_DIR;
  const merged = mergeDeep(defaultConfig(dataDir) as unknown as Record<string, unknown>, layered);

  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  ajv.addKeyword('x-env');
  const validate = ajv.compile(configSchema);
  if (!validate(merged)) {
    const source = (path: string) => {
      const name = envSource.get(path);
      if (name) return `${name} `;
      return file ? `${file} ` : 'config ';
    };
    for (const error of validate.errors ?? []) problems.push(formatAjvError(error, source));
  }
  problems.push(...crossFieldProblems(merged));

  if (problems.length > 0) {
    throw new PortcullisError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
      detail: { problems },
    });
  }
  return deepFreeze(merged as unknown as Config);
}

/** True for 127.0.0.0/8, `localhost` and `::1` (with or without brackets). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Rules that span fields, checked once the schema holds. The scanner's adapter API makes the
 * scanner pull any repository with its robot credential: reachable from other hosts, it needs a token.
 */
function crossFieldProblems(merged: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const scanner = isPlainObject(merged.scanner) ? merged.scanner : {};
  const listen = scanner.listen;
  // A malformed listen address is already reported by the schema.
  if (typeof listen === 'string' && listen.includes(':')) {
    const token = scanner.apiToken;
    if (!isLoopbackHost(parseHostPort(listen).host) && (typeof token !== 'string' || token === '')) {
      problems.push(
        `PORTCULLIS_SCANNER_API_TOKEN / scanner.apiToken: required when scanner.listen (${listen}) is not a loopback address`,
      );
    }
  }
  const registry = isPlainObject(merged.registry) ? merged.registry : {};
  const proxies = Array.isArray(registry.trustedProxies) ? registry.trustedProxies : [];
  proxies.forEach((entry, index) => {
    if (typeof entry === 'string' && !isAddressOrCidr(entry)) {
      problems.push(`PORTCULLIS_REGISTRY_TRUSTED_PROXIES / registry.trustedProxies[${index}]: expected an IP address or a CIDR (10.1.2.3, 10.1.0.0/16, 2001:db8::/64), got ${JSON.stringify(entry)}`);
    }
  });
  return problems;
}

function isAddressOrCidr(value: string): boolean {
  if (ipaddr.isValid(value)) return true;
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    // Not a CIDR either.
    return false;
  }
}

/** Splits `HOST:PORT` (validated by the schema) into its parts. */
export function parseHostPort(value: string): { host: string; port: number } {
  const index = value.lastIndexOf(':');
  return { host: value.slice(0, index), port: Number(value.slice(index + 1)) };
}
