import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

/**
 * DESIGN.md's dependency rules, checked by reading every import of every source file under src/
 * (tests beside the modules excluded):
 *
 * 1. `config`, `db` and `http` know nothing of the domain: they import only each other, `log` and
 *    `errors.ts`.
 * 2. Domain modules import fastify only in their routes files (`routes.ts`, `*-routes.ts`) and in
 *    the server assembly files listed in SERVER_ASSEMBLY.
 * 3. `policy` imports no other subsystem.
 * 4. `registry`, `scanner`, `audit` and `certs` do not import each other; they meet in src/main.ts
 *    or over HTTP.
 *
 * Imports of the shared contract files (CONTRACTS) are how subsystems meet without importing
 * each other, so rules 3 and 4 let them through.
 *
 * A rule broken on purpose (and reported) goes into KNOWN_VIOLATIONS with the reason; the test
 * fails on any other violation, and on a listed one that no longer exists, so the list stays true.
 */
const src = join(repoRoot, 'src');
const FOUNDATION = new Set(['config', 'db', 'http', 'log', 'errors.ts']);
const DOMAIN = new Set(['admission', 'policy', 'verdicts', 'registry', 'scanner', 'certs', 'audit', 'kube', 'harbor']);
const APART = ['registry', 'scanner', 'audit', 'certs'];

/**
 * The contracts between subsystems (briefing: "code against them"). They live in the folder of
 * the subsystem that owns the concept, but importing one is how two subsystems agree without
 * importing each other's code, so rules 3 and 4 do not count imports of these files.
 */
const CONTRACTS = new Set([
  'src/policy/types.ts',
  'src/policy/image-reference.ts',
  'src/verdicts/source.ts',
  'src/admission/decision.ts',
  'src/harbor/report.ts',
  'src/registry/access.ts',
  'src/registry/scan-port.ts',
]);

/**
 * Files of domain modules that assemble a fastify server or plugin around their routes (a routes
 * file by another name). Each entry says why it is not a routes file.
 */
const SERVER_ASSEMBLY: Record<string, string> = {
  'src/admission/admission.ts': 'the admission factory exposes its routes plugin type (FastifyPluginAsync) and builds its standalone server',
  'src/registry/registry.ts': 'the registry factory assembles the OCI, token and Harbor route plugins into one app',
  'src/registry/auth/access-control.ts': 'the identity factory exposes its token and Harbor identity routes as one plugin',
  'src/scanner/create.ts': 'the scanner factory exposes its adapter routes plugin type',
  'src/audit/audit.ts': 'the audit factory exposes its API routes plugin type',
};

/**
 * Violations reported to their owners: `file -> import` → what is wrong and the fix. Helpers of
 * the registry's routes take fastify's request/reply types: a placement issue (type-only imports),
 * not a layering one; no domain logic depends on fastify at run time.
 */
const ROUTE_HELPER = 'helper of the routes typed on FastifyRequest/FastifyReply: move into a *-routes.ts file or type it on its own request shape';
const KNOWN_VIOLATIONS: Record<string, string> = {
  'src/registry/harbor/errors.ts -> fastify': ROUTE_HELPER,
  'src/registry/auth/api-support.ts -> fastify': ROUTE_HELPER,
  'src/registry/oci/context.ts -> fastify': ROUTE_HELPER,
  'src/registry/oci/errors.ts -> fastify': ROUTE_HELPER,
  'src/registry/oci/listing.ts -> fastify': ROUTE_HELPER,
};

interface ImportEdge {
  file: string;
  specifier: string;
  /** The imported file relative to the repository (for relative imports), else the package name. */
  target: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): ImportEdge[] {
  const text = readFileSync(file, 'utf8');
  const edges: ImportEdge[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    const target = specifier.startsWith('.') ? relative(repoRoot, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts') : specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
    edges.push({ file: relative(repoRoot, file), specifier, target, typeOnly });
  };
  for (const match of text.matchAll(IMPORT)) add(match[3] as string, Boolean(match[2]));
  for (const match of text.matchAll(DYNAMIC)) add(match[1] as string, false);
  return edges;
}

/** The top-level module of a path under src/ (`src/registry/oci/routes.ts` → `registry`). */
function moduleOf(path: string): string | undefined {
  if (!path.startsWith('src/')) return undefined;
  return path.slice(4).split('/')[0];
}

function violations(): Record<string, string> {
  const found: Record<string, string> = {};
  for (const file of sourceFiles(src)) {
    for (const edge of importsOf(file)) {
      const from = moduleOf(edge.file);
      const to = moduleOf(edge.target);
      const key = `${edge.file} -> ${edge.target}`;
      if (from && ['config', 'db', 'http'].includes(from) && to && !FOUNDATION.has(to)) found[key] = `rule 1: ${from} imports the ${to} module`;
      if (from && DOMAIN.has(from) && edge.target === 'fastify') {
        const name = edge.file.split('/').pop() ?? '';
        if (name !== 'routes.ts' && !name.endsWith('-routes.ts') && !(edge.file in SERVER_ASSEMBLY)) found[key] = `rule 2: fastify imported outside a routes file${edge.typeOnly ? ' (type-only)' : ''}`;
      }
      if (CONTRACTS.has(edge.target)) continue;
      if (from === 'policy' && to && to !== 'policy' && DOMAIN.has(to)) found[key] = `rule 3: policy imports the ${to} subsystem`;
      if (from && to && from !== to && APART.includes(from) && APART.includes(to)) found[key] = `rule 4: ${from} imports ${to}`;
    }
  }
  return found;
}

describe('architecture: DESIGN.md dependency rules', () => {
  it('reads the imports of every source file (the checker itself works)', () => {
    const edges = sourceFiles(src).flatMap(importsOf);
    expect(edges.length).toBeGreaterThan(50);
    expect(edges).toContainEqual(expect.objectContaining({ file: 'src/config/load.ts', target: 'src/config/schema.ts' }));
    expect(edges).toContainEqual(expect.objectContaining({ file: 'src/http/server.ts', target: 'fastify' }));
  });

  it('finds no violation beyond the known, reported ones', () => {
    const found = violations();
    const unexpected = Object.entries(found)
      .filter(([key]) => !(key in KNOWN_VIOLATIONS))
      .map(([key, rule]) => `${key}  (${rule})`);
    expect(unexpected, `dependency rule violations:\n  ${unexpected.join('\n  ')}`).toEqual([]);
  });

  // One line per known violation in the test output, so that they stay visible; each fails once
  // it is fixed, so that the list is kept true.
  it.each(Object.entries(KNOWN_VIOLATIONS))('known, reported violation still present: %s (%s)', (key) => {
    expect(Object.keys(violations())).toContain(key);
  });

  it.each(Object.keys(SERVER_ASSEMBLY).map((file) => [file]))('lists %s as server assembly only while it exists', (file) => {
    // An entry for a file that is gone would silently allow a new file of that name later.
    let exists = true;
    try {
      statSync(join(repoRoot, file));
    } catch {
      exists = false;
    }
    expect.soft(exists, `${file} is listed in SERVER_ASSEMBLY but does not exist`).toBe(true);
  });
});
