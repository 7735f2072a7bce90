import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PortcullisError } from '../errors.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { envBindings, loadConfig } from './load.js';

const dirs: { remove(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => dir.remove()));

function configFile(text: string): string {
  const dir = tempDir();
  dirs.push(dir);
  const file = join(dir.path, 'portcullis.yaml');
  writeFileSync(file, text);
  return file;
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PortcullisError);
    return ((error as PortcullisError).detail as { problems: string[] }).problems;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('gives defaults rooted in the data directory when nothing is configured', () => {
    const config = loadConfig({ env: {} });
    expect(config.dataDir).toBe('./.portcullis');
    expect(config.database.sqlitePath).toBe('./.portcullis/portcullis.db');
    expect(config.webhook.bodyLimitBytes).toBe(3 * 1024 * 1024);
    expect(Object.isFrozen(config.webhook.verdicts)).toBe(true);
  });

  it('layers defaults, then the file, then the environment, then overrides', () => {
    const file = configFile('dataDir: /srv/p\nlog:\n  level: debug\nscanner:\n  concurrency: 3\n  extraArgs: [--offline-scan]\n');
    const config = loadConfig({
      file,
      env: { PORTCULLIS_SCANNER_CONCURRENCY: '4', PORTCULLIS_WEBHOOK_EXCLUDED_NAMESPACES: 'a, b', PORTCULLIS_ADMIN_PASSWORD: 'correct horse' },
      overrides: { webhook: { listen: '0.0.0.0:9443' } },
    });
    expect(config.log.level).toBe('debug');
    expect(config.database.sqlitePath).toBe('/srv/p/portcullis.db');
    expect(config.scanner.concurrency).toBe(4);
    expect(config.scanner.extraArgs).toEqual(['--offline-scan']);
    expect(config.webhook.excludedNamespaces).toEqual(['a', 'b']);
    expect(config.webhook.listen).toBe('0.0.0.0:9443');
    expect(config.registry.adminPassword).toBe('correct horse');
  });

  it('reports every problem at once, naming the file or variable, the field, what was expected and what came', () => {
    const file = configFile('log:\n  level: loud\nwebhook:\n  bodyLimit: 5\n');
    const problems = problemsOf(() =>
      loadConfig({ file, env: { PORTCULLIS_SCANNER_CONCURRENCY: 'many', PORTCULLIS_NOPE: '1' } }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'PORTCULLIS_SCANNER_CONCURRENCY: expected a number, got "many"',
        'PORTCULLIS_NOPE: unknown environment variable (docs/configuration.md lists the known ones)',
        `${file} /log/level: must be one of trace, debug, info, warn, error, fatal, silent, got "loud"`,
        `${file} /webhook: unknown field "bodyLimit"`,
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('takes trusted proxies as addresses and CIDRs, and names an entry that is neither', () => {
    const config = loadConfig({ env: { PORTCULLIS_REGISTRY_TRUSTED_PROXIES: '10.42.0.15, 10.43.0.0/16,2001:db8::/64' } });
    expect(config.registry.trustedProxies).toEqual(['10.42.0.15', '10.43.0.0/16', '2001:db8::/64']);
    const problems = problemsOf(() => loadConfig({ env: { PORTCULLIS_REGISTRY_TRUSTED_PROXIES: '10.42.0.15,ingress-nginx,10.0.0.0/33' } }));
    expect(problems).toEqual([
      'PORTCULLIS_REGISTRY_TRUSTED_PROXIES / registry.trustedProxies[1]: expected an IP address or a CIDR (10.1.2.3, 10.1.0.0/16, 2001:db8::/64), got "ingress-nginx"',
      'PORTCULLIS_REGISTRY_TRUSTED_PROXIES / registry.trustedProxies[2]: expected an IP address or a CIDR (10.1.2.3, 10.1.0.0/16, 2001:db8::/64), got "10.0.0.0/33"',
    ]);
  });

  it('never echoes a secret value into an error, from the file or the environment', () => {
    const file = configFile('registry:\n  adminPassword: short\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems).toEqual([`${file} /registry/adminPassword: must NOT have fewer than 8 characters, got [redacted]`]);
    const broken = configFile('registry:\n  adminPassword: "hunter2-secret\n  listen: x\n');
    const parse = problemsOf(() => loadConfig({ file: broken, env: {} }));
    expect(parse).toHaveLength(1);
    expect(parse[0]).not.toContain('hunter2');
  });

  it('rejects a file that is not a mapping', () => {
    const file = configFile('- just\n- a list\n');
    expect(problemsOf(() => loadConfig({ file, env: {} }))).toEqual([`${file}: expected a mapping at the top level, got a list`]);
  });

  it('derives one environment variable per field, with the documented override for the admin password', () => {
    const names = envBindings().map((binding) => binding.name);
    expect(names).toContain('PORTCULLIS_WEBHOOK_VERDICTS_HARBOR_URL');
    expect(names).toContain('PORTCULLIS_ADMIN_PASSWORD');
    expect(new Set(names).size).toBe(names.length);
  });
  describe('the scanner API token', () => {
    const token = 'a-token-of-sixteen-or-more';
    const problem = 'PORTCULLIS_SCANNER_API_TOKEN / scanner.apiToken: required when scanner.listen (0.0.0.0:8080) is not a loopback address';
    it.each([
      ['the default loopback address without a token', {}, {}],
      ['127.0.0.2 without a token', {}, { scanner: { listen: '127.0.0.2:8080' } }],
      ['localhost without a token', {}, { scanner: { listen: 'localhost:8080' } }],
      ['0.0.0.0 with a token from the environment', { PORTCULLIS_SCANNER_API_TOKEN: token }, { scanner: { listen: '0.0.0.0:8080' } }],
      ['0.0.0.0 from the environment with a token', { PORTCULLIS_SCANNER_LISTEN: '0.0.0.0:8080', PORTCULLIS_SCANNER_API_TOKEN: token }, {}],
    ])('accepts %s', (_name, env, overrides) => {
      expect(() => loadConfig({ env, overrides })).not.toThrow();
    });

    it('is required when the scanner listens on a non-loopback address, from the environment or a flag', () => {
      expect(problemsOf(() => loadConfig({ env: { PORTCULLIS_SCANNER_LISTEN: '0.0.0.0:8080' } }))).toEqual([problem]);
      expect(problemsOf(() => loadConfig({ env: {}, overrides: { scanner: { listen: '0.0.0.0:8080' } } }))).toEqual([problem]);
    });

    it('is reported together with the other problems', () => {
      const problems = problemsOf(() =>
        loadConfig({ env: { PORTCULLIS_SCANNER_LISTEN: '0.0.0.0:8080', PORTCULLIS_SCANNER_CONCURRENCY: 'many' } }),
      );
      expect(problems).toEqual([expect.stringContaining('PORTCULLIS_SCANNER_CONCURRENCY'), problem]);
    });
  });
});
