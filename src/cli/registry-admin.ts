import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent, fetch } from 'undici';
import { loadConfig } from '../config/load.js';
import { ROLES } from '../registry/auth/roles.js';
import { REPOSITORY_ACTIONS } from '../registry/auth/scope.js';
import { EXIT, UsageError, stringOption, type CliIO, type OptionSpec, type OptionValues } from './command.js';

/**
 * What `portcullis project …` and `portcullis robot …` share: a small client of the registry's
 * Harbor-compatible API (`/api/v2.0`), with Basic credentials.
 */
export const ADMIN_OPTIONS: OptionSpec = {
  url: { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  ca: { type: 'string' },
  output: { type: 'string', short: 'o' },
};

export const ADMIN_USAGE = `Connection (flags win over the environment, which wins over the config file):
  --url URL             The registry [PORTCULLIS_REGISTRY_CLIENT_URL; default: registry.externalUrl or https://registry.listen]
  --username NAME       A registry user [PORTCULLIS_REGISTRY_CLIENT_USERNAME; default: admin]
  --password PASSWORD   Their password [PORTCULLIS_REGISTRY_CLIENT_PASSWORD, else PORTCULLIS_ADMIN_PASSWORD]
  --ca FILE             CA certificate (PEM) to trust for an https URL [PORTCULLIS_REGISTRY_CLIENT_CA_FILE]
  -o, --output FORMAT   table (default) or json
  PORTCULLIS_CONFIG     A config file whose registry.client section holds the same settings

Exit codes: 0 done, 1 the registry refused (the message says why), 2 bad usage or unreachable registry.`;

/** A refusal by the registry (4xx/5xx), with Harbor's error message. */
export class RegistryApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface AdminClient {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; headers: Headers }>;
  close(): Promise<void>;
}

function harborMessage(json: unknown, fallback: string): string {
  if (typeof json === 'object' && json !== null && 'errors' in json && Array.isArray(json.errors)) {
    const messages = json.errors.flatMap((error: unknown) => (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string' ? [error.message] : []));
    if (messages.length > 0) return messages.join('; ');
  }
  return fallback;
}

export function connectAdmin(values: OptionValues, io: CliIO): AdminClient {
  const config = loadConfig({ env: io.env });
  const client = config.registry.client ?? {};
  const fallbackUrl = config.registry.externalUrl ?? `${config.registry.tls.enabled ? 'https' : 'http'}://${config.registry.listen}`;
  const url = (stringOption(values, 'url') ?? client.url ?? fallbackUrl).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url: expected an http:// or https:// URL, got "${url}"`);
  const username = stringOption(values, 'username') ?? client.username ?? 'admin';
  const password = stringOption(values, 'password') ?? client.password ?? config.registry.adminPassword;
  if (password === undefined) throw new UsageError('--password (or PORTCULLIS_REGISTRY_CLIENT_PASSWORD) is required');
  const caFile = stringOption(values, 'ca') ?? client.caFile;
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(resolve(io.cwd, caFile), 'utf8');
    } catch (error) {
      throw new UsageError(`--ca ${caFile}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const dispatcher = new Agent(ca ? { connect: { ca } } : {});
  const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return {
    async call(method, path, body) {
      let response;
      try {
        response = await fetch(`${url}/api/v2.0${path}`, {
          method,
          dispatcher,
          headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (error) {
        const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
        throw new UsageError(`cannot reach the registry at ${url}${cause}`);
      }
      const text = await response.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (response.status >= 400) throw new RegistryApiError(response.status, `${method} ${path}: ${response.status} ${harborMessage(json, text.slice(0, 200))}`);
      return { status: response.status, json, headers: response.headers as unknown as Headers };
    },
    close: () => dispatcher.close(),
  };
}

export function adminOutput(values: OptionValues): 'table' | 'json' {
  const output = stringOption(values, 'output') ?? 'table';
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output: expected table or json, got "${output}"`);
  return output;
}

/** Runs `body` with a client; a refusal by the registry prints its message and exits 1. */
export async function withAdmin(values: OptionValues, io: CliIO, body: (client: AdminClient) => Promise<number>): Promise<number> {
  const client = connectAdmin(values, io);
  try {
    return await body(client);
  } catch (error) {
    if (error instanceof RegistryApiError) {
      io.stderr(`${error.message}\n`);
      return EXIT.negative;
    }
    throw error;
  } finally {
    await client.close();
  }
}

/** Left-aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, index) => Math.max(header.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** Fetches every page of a Harbor list endpoint. */
export async function listAll(client: AdminClient, path: string): Promise<unknown[]> {
  const items: unknown[] = [];
  for (let page = 1; ; page += 1) {
    const separator = path.includes('?') ? '&' : '?';
    const { json, headers } = await client.call('GET', `${path}${separator}page=${page}&page_size=100`);
    if (!Array.isArray(json)) break;
    items.push(...json);
    const total = Number(headers.get('x-total-count') ?? items.length);
    if (json.length === 0 || items.length >= total) break;
  }
  return items;
}

/** Harbor's role ids by name. */
export const ROLE_IDS: Readonly<Record<string, number>> = ROLES;

export const ROBOT_ACTIONS: readonly string[] = REPOSITORY_ACTIONS;

/** A JSON object's fields, or none. */
export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** A scalar field of a JSON object as text ('' when absent). */
export function field(value: unknown, key: string): string {
  const found = record(value)[key];
  return typeof found === 'string' || typeof found === 'number' || typeof found === 'boolean' ? String(found) : '';
}

/** The one positional robot ID. */
export function robotId(positionals: string[]): number {
  const [id, ...extra] = positionals;
  if (!id || extra.length > 0 || !/^[0-9]+$/.test(id)) throw new UsageError(`expected one robot ID (a number, see \`portcullis robot list\`), got "${positionals.join(' ')}"`);
  return Number(id);
}
