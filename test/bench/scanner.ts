/**
 * `npm run bench:scanner`: what the orchestrator costs on top of Trivy.
 *
 * Trivy is replaced by a stand-in that answers at once with a real report (photon-30, 3 findings),
 * in two forms:
 *   A. in process (a RunProcess that returns immediately): the queue, the database, normalization
 *      and storage are all that is measured;
 *   B. a real child process (`/bin/sh` printing the report): adds the process spawn Trivy also costs.
 * The baseline of each is the stand-in called directly, the same number of times, in the same run.
 * Reported: jobs per second through the queue (concurrency 1 and 4), and the latency the
 * orchestrator adds per scan (mean time from request to stored report, minus the baseline call).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import { migrate, openDatabase } from '../../src/db/database.js';
import { defaultConfig } from '../../src/config/schema.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { silentLogger } from '../../src/log/logger.js';
import { createScanner } from '../../src/scanner/create.js';
import { scannerMigrations } from '../../src/scanner/migrations.js';
import { runProcess, type ProcessResult, type RunProcess } from '../../src/scanner/process.js';
import { tempDir } from '../helpers/tmp.js';

const JOBS = Number(process.env.BENCH_SCANNER_JOBS ?? 300);
const report = JSON.stringify(JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(new URL('../fixtures/trivy/photon-30.json.golden', import.meta.url), 'utf8'))));
const versionJson = JSON.stringify({ Version: '0.99.0-bench', VulnerabilityDB: { Version: 2, UpdatedAt: '2026-01-01T00:00:00Z' } });

const instant: RunProcess = async (request) => {
  const stdout = request.args[0] === '--version' ? versionJson : report;
  return { exitCode: 0, signal: null, stdout, stderr: '', timedOut: false } satisfies ProcessResult;
};

const digestOf = (run: string, n: number) => `sha256:${Buffer.from(`${run}-${n}`).toString('hex').padEnd(64, '0').slice(0, 64)}`;

async function baseline(run: RunProcess, command: string, count: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i += 1) await run({ command, args: ['image', '--format', 'json', 'x'], env: { PATH: process.env.PATH }, timeoutMs: 30_000 });
  return (performance.now() - started) / count;
}

async function withScanner<T>(run: RunProcess, command: string, concurrency: number, work: (scanner: ReturnType<typeof createScanner>) => Promise<T>): Promise<T> {
  const dir = tempDir('portcullis-bench-scanner-');
  const database = openDatabase<unknown>({ sqlitePath: join(dir.path, 'bench.db') });
  await migrate(database.db as Kysely<unknown>, scannerMigrations);
  const scanner = createScanner({
    config: { ...defaultConfig(dir.path).scanner, trivyPath: command, concurrency },
    logger: silentLogger(),
    db: database.db as Kysely<unknown>,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    readiness: new Readiness(),
    registryUrl: 'https://registry.bench:5000',
    credentials: { issueRobotCredential: async () => ({ username: 'robot$bench+scan', password: 'bench' }) },
    runProcess: run,
    env: { PATH: process.env.PATH },
    instanceId: 'bench',
  });
  await scanner.start();
  try {
    return await work(scanner);
  } finally {
    await scanner.close();
    await database.close();
    dir.remove();
  }
}

const request = (label: string, n: number) => ({ repository: 'bench/app', digest: digestOf(label, n), mediaType: 'application/vnd.oci.image.manifest.v1+json', trigger: 'demand' as const });

/** Every job queued at once: jobs per second through the queue. */
async function throughput(run: RunProcess, command: string, count: number, concurrency: number, label: string) {
  return withScanner(run, command, concurrency, async (scanner) => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: count }, async (_, n) => {
        const { job } = await scanner.scanner.enqueue(request(label, n));
        await scanner.scanner.queue.settled(job.id);
      }),
    );
    const elapsed = performance.now() - started;
    const counts = await scanner.scanner.store.countByStatus();
    if (counts.succeeded !== count) throw new Error(`${label}: ${counts.succeeded} of ${count} jobs succeeded`);
    return { jobsPerSecond: count / (elapsed / 1000), perJobMs: elapsed / count };
  });
}

/** One job at a time, so nothing waits in the queue: request → stored report, per scan. */
async function latency(run: RunProcess, command: string, count: number, label: string) {
  return withScanner(run, command, 1, async (scanner) => {
    const samples: number[] = [];
    for (let n = 0; n < count; n += 1) {
      const started = performance.now();
      const { job } = await scanner.scanner.enqueue(request(label, n));
      await scanner.scanner.queue.settled(job.id);
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    return { p50: samples[Math.floor(samples.length / 2)] ?? 0, p95: samples[Math.floor(samples.length * 0.95)] ?? 0, mean: samples.reduce((sum, x) => sum + x, 0) / samples.length };
  });
}

function fixed(value: number): string {
  return value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
}

const dir = tempDir('portcullis-bench-standin-');
const script = join(dir.path, 'trivy');
writeFileSync(join(dir.path, 'report.json'), report);
writeFileSync(script, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo '${versionJson}'; else cat "${join(dir.path, 'report.json')}"; fi\n`, { mode: 0o755 });
const PROCESS_JOBS = Math.min(JOBS, 100);

console.log(`scanner benchmark: ${JOBS} digests (in-process stand-in), ${PROCESS_JOBS} (child-process stand-in); Node ${process.version}; SQLite (WAL) in a temp dir\n`);

const instantBase = await baseline(instant, 'trivy', JOBS);
const processBase = await baseline(runProcess, script, PROCESS_JOBS);
const throughputs = [
  ['A. in-process stand-in', 1, await throughput(instant, 'trivy', JOBS, 1, 'a1')],
  ['A. in-process stand-in', 4, await throughput(instant, 'trivy', JOBS, 4, 'a4')],
  ['B. child-process stand-in', 1, await throughput(runProcess, script, PROCESS_JOBS, 1, 'b1')],
  ['B. child-process stand-in', 4, await throughput(runProcess, script, PROCESS_JOBS, 4, 'b4')],
] as const;
const latencies = [
  ['A. in-process stand-in', instantBase, await latency(instant, 'trivy', JOBS, 'la')],
  ['B. child-process stand-in', processBase, await latency(runProcess, script, PROCESS_JOBS, 'lb')],
] as const;
dir.remove();

console.log('Throughput (every job queued at once):\n');
console.log('| stand-in | concurrency | jobs/s | stand-in called directly, calls/s (baseline) |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, concurrency, result] of throughputs) {
  const base = name.startsWith('A') ? instantBase : processBase;
  console.log(`| ${name} | ${concurrency} | ${fixed(result.jobsPerSecond)} | ${base > 0 ? fixed(1000 / base) : '> 10^6'} |`);
}
console.log('\nLatency per scan, one at a time (request → report stored):\n');
console.log('| stand-in | p50 ms | p95 ms | stand-in alone ms (baseline) | orchestrator adds ms (mean − baseline) |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, base, result] of latencies) {
  console.log(`| ${name} | ${fixed(result.p50)} | ${fixed(result.p95)} | ${fixed(base)} | ${fixed(result.mean - base)} |`);
}
