/**
 * `npm run bench:admission`: the validating webhook (default policies, warm verdict cache) against
 * a bare fastify HTTPS handler that only echoes the uid, with the same ~3 KB AdmissionReview, in
 * the same run, at 10 and 50 connections. Prints req/s, p50 and p99 of both and the ratios.
 * Targets: ≥ 0.8× the bare handler's throughput and p99 ≤ 2× its p99.
 *
 * The servers run in a child process (this file with `--serve`) so that the load generator does
 * not share their event loop; Portcullis's side is the built code in dist/. Each round measures
 * the bare handler and the validate path back to back (in alternating order, ABBA), and the ratios
 * are taken within a round, so that a drift in the machine's speed between rounds cancels out; the
 * median over `--rounds N` (default 15) rounds is reported with the spread, and the per-server
 * figures are the medians too. Options: `--duration SECONDS` (default 2) per measurement. Many
 * short paired rounds rather than a few long ones: on a shared 2-core VM the machine's speed moves
 * by 10–20 % within seconds, and the median of more pairs taken closer together moves less.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import Fastify from 'fastify';
import { admissionReview, workload } from '../helpers/admission.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const IMAGES = ['registry.example.com/shop/web:1.0', 'registry.example.com/shop/sidecar:2.1', 'registry.example.com/shop/init:0.3'];

/** A realistic Deployment review of about 3 KB (labels, env, resources, probes, three images). */
export function payload(): string {
  const object = workload('Deployment', { name: 'web', namespace: 'shop', containers: IMAGES.slice(0, 2), initContainers: IMAGES.slice(2) });
  const spec = (object.spec as { template: { spec: { containers: Record<string, unknown>[] }; metadata: Record<string, unknown> } }).template;
  spec.metadata.annotations = {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '9090',
    'kubectl.kubernetes.io/restartedAt': '2026-01-02T03:04:05Z',
    'example.com/owner': 'storefront-team@example.com',
    'example.com/runbook': 'https://runbooks.example.com/storefront/web',
  };
  for (const container of spec.spec.containers) {
    container.env = Array.from({ length: 8 }, (_, index) => ({ name: `SETTING_${index}`, value: `value-${index}-${'x'.repeat(24)}` }));
    container.resources = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };
    container.readinessProbe = { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 };
    container.ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }];
  }
  (object.metadata as Record<string, unknown>).labels = { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/part-of': 'shop', team: 'storefront' };
  return JSON.stringify(admissionReview({ object, uid: '705ab4f5-6393-11e8-b7cc-42010a800002' }));
}

/**
 * The product modules as they ship: compiled by `npm run build` into dist/ (the npm script builds
 * first), not the TypeScript sources through the tsx loader, whose transform adds work that the
 * built code does not do (a name-keeping wrapper around every function created per request).
 */
async function product() {
  const dist = (path: string) => {
    const url = new URL(`../../dist/${path}`, import.meta.url);
    if (!existsSync(url)) throw new Error(`${fileURLToPath(url)} is missing: run \`npm run build\` first (npm run bench:admission does)`);
    return url.href;
  };
  return {
    ...((await import(dist('admission/admission.js'))) as typeof import('../../src/admission/admission.js')),
    ...((await import(dist('admission/webhook-config.js'))) as typeof import('../../src/admission/webhook-config.js')),
    ...((await import(dist('admission/offline.js'))) as typeof import('../../src/admission/offline.js')),
    ...((await import(dist('config/schema.js'))) as typeof import('../../src/config/schema.js')),
    ...((await import(dist('http/metrics.js'))) as typeof import('../../src/http/metrics.js')),
    ...((await import(dist('http/readiness.js'))) as typeof import('../../src/http/readiness.js')),
    ...((await import(dist('http/server.js'))) as typeof import('../../src/http/server.js')),
    ...((await import(dist('log/logger.js'))) as typeof import('../../src/log/logger.js')),
    ...((await import(dist('policy/store.js'))) as typeof import('../../src/policy/store.js')),
    ...((await import(dist('verdicts/static-source.js'))) as typeof import('../../src/verdicts/static-source.js')),
    ...((await import(dist('certs/issue.js'))) as typeof import('../../src/certs/issue.js')),
  };
}

async function serve(): Promise<void> {
  const { issueCa, issueServing, silentLogger, defaultConfig, createPolicyStore, StaticVerdictSource, reportEntry, createAdmission, createMetricsRegistry, Readiness, readWebhookSettings, listen, buildServer, closeConnectionsWhen, CIPHER_PREFERENCE } =
    await product();
  const now = new Date();
  const ca = issueCa({ commonName: 'bench CA', validityDays: 1, now });
  const tls = issueServing({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1, now });
  const logger = silentLogger();
  const config = defaultConfig('/nonexistent').webhook;

  const policies = createPolicyStore({ dir: `${root}policies`, logger, watch: false });
  await policies.start();
  const source = new StaticVerdictSource();
  for (const image of IMAGES) source.add(...reportEntry(image, `${root}test/fixtures/trivy/ubuntu-1804-ignore-unfixed.json.golden`));
  let recorded = 0;
  const admission = createAdmission({
    config,
    logger,
    metrics: createMetricsRegistry(),
    readiness: new Readiness(),
    policies,
    verdicts: source,
    decisions: { record: () => void (recorded += 1) },
    webhooks: readWebhookSettings(`${root}webhooks`),
    tls,
  });
  const app = await admission.buildServer();
  // As `portcullis up` builds every server (src/main.ts): connections close while stopping.
  closeConnectionsWhen(app, () => false);
  const portcullis = await listen(app, '127.0.0.1', 0);

  // The same TLS suites as Portcullis's servers, so that only the handler differs.
  if (CIPHER_PREFERENCE === undefined) throw new Error('dist/ predates the TLS suite order: run `npm run build` first (npm run bench:admission does)');
  const bare = Fastify({ https: { key: tls.key, cert: tls.cert, ...CIPHER_PREFERENCE }, bodyLimit: config.bodyLimitBytes });
  bare.post('/validate', async (request) => {
    const body = request.body as { apiVersion?: string; request?: { uid?: string } };
    return { apiVersion: body.apiVersion, kind: 'AdmissionReview', response: { uid: body.request?.uid, allowed: true } };
  });
  const baseline = await listen(bare, '127.0.0.1', 0);

  // For reading the gap: the project's shared HTTP layer (request ids, per-request logger, error
  // handler, health routes) with the same echo handler, without the admission pipeline.
  const shared = buildServer({ logger, tls, bodyLimit: config.bodyLimitBytes });
  closeConnectionsWhen(shared, () => false);
  shared.post('/validate', async (request) => {
    const body = request.body as { apiVersion?: string; request?: { uid?: string } };
    return { apiVersion: body.apiVersion, kind: 'AdmissionReview', response: { uid: body.request?.uid, allowed: true } };
  });
  const foundation = await listen(shared, '127.0.0.1', 0);

  let cpuMark = process.cpuUsage();
  process.on('message', (message) => {
    if (message === 'cpu-start') {
      cpuMark = process.cpuUsage();
      process.send?.({ cpu: 0 });
    }
    if (message === 'cpu-stop') {
      const used = process.cpuUsage(cpuMark);
      process.send?.({ cpu: used.user + used.system });
    }
    if (message === 'stop') {
      void Promise.all([app.close(), bare.close(), shared.close(), policies.close()]).then(() => {
        process.send?.({ recorded });
        process.exit(0);
      });
    }
  });
  process.send?.({ portcullis: portcullis.port, baseline: baseline.port, foundation: foundation.port, validatePath: admission.webhooks.validate.path });
}

interface Measured {
  requests: { average: number; total: number };
  /** Server CPU time (user + system) per answered request, µs: insensitive to other load on the machine. */
  cpuPerRequest?: number;
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

function isMeasured(value: unknown): value is Measured {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  const requests = record.requests as Record<string, unknown> | undefined;
  const latency = record.latency as Record<string, unknown> | undefined;
  return typeof requests?.average === 'number' && typeof requests.total === 'number' && typeof latency?.p50 === 'number' && typeof latency.p99 === 'number' && typeof record.non2xx === 'number';
}

/** Per figure, the median over the rounds. */
function median(runs: readonly Measured[]): { rps: number; p50: number; p99: number; cpu: number } {
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  return {
    rps: mid(runs.map((run) => run.requests.average)),
    p50: mid(runs.map((run) => run.latency.p50)),
    p99: mid(runs.map((run) => run.latency.p99)),
    cpu: mid(runs.map((run) => run.cpuPerRequest ?? 0)),
  };
}

/**
 * `top / bottom` within each round (runs of the same index were measured back to back): the
 * median, every ratio, and the range as text. p99 ratios are taken as bare / validate, so that
 * a larger number is better for every figure, and inverted for printing.
 */
function paired(top: readonly Measured[], bottom: readonly Measured[], figure: (run: Measured) => number): { median: number; all: number[]; range: string } {
  if (top.length !== bottom.length) throw new Error(`paired figures need as many runs on each side (${top.length} and ${bottom.length})`);
  const all = top.map((run, index) => figure(run) / Math.max(figure(bottom[index] as Measured), Number.MIN_VALUE));
  const sorted = [...all].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  return { median, all, range: `${(sorted[0] ?? 0).toFixed(2)}–${(sorted.at(-1) ?? 0).toFixed(2)}` };
}

type Autocannon = (options: Record<string, unknown>) => Promise<unknown>;

function loadAutocannon(): Autocannon {
  const loaded: unknown = createRequire(import.meta.url)('autocannon');
  if (typeof loaded !== 'function') throw new Error('autocannon did not load as a function');
  return loaded as Autocannon;
}

/** Asks the server process for its CPU counter (`cpu-start` resets it, `cpu-stop` reads it). */
function serverCpu(child: ChildProcess, message: 'cpu-start' | 'cpu-stop'): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (reply: unknown) => {
      if (reply !== null && typeof reply === 'object' && 'cpu' in reply && typeof reply.cpu === 'number') {
        child.off('message', onMessage);
        resolve(reply.cpu);
      }
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

/** `body` is the same text for every request, or made anew for each one. */
async function measure(autocannon: Autocannon, url: string, body: string | (() => string), connections: number, duration: number, child?: ChildProcess): Promise<Measured> {
  if (child) await serverCpu(child, 'cpu-start');
  const request = typeof body === 'string' ? { body } : { requests: [{ setupRequest: (each: Record<string, unknown>) => ({ ...each, body: body() }) }] };
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...request,
    connections,
    pipelining: 1,
    duration,
  });
  if (!isMeasured(result)) throw new Error('autocannon returned an unexpected result');
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  if (child) result.cpuPerRequest = (await serverCpu(child, 'cpu-stop')) / Math.max(result.requests.total, 1);
  return result;
}

async function main(): Promise<void> {
  const option = (name: string, fallback: number) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? Number(process.argv[at + 1]) : fallback;
  };
  const duration = option('--duration', 2);
  const rounds = option('--rounds', 15);
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<{ portcullis: number; baseline: number; foundation: number; validatePath: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { portcullis: number; baseline: number; foundation: number; validatePath: string }));
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  const autocannon = loadAutocannon();
  const body = payload();
  const portcullisUrl = `https://127.0.0.1:${ports.portcullis}${ports.validatePath}`;
  const baselineUrl = `https://127.0.0.1:${ports.baseline}/validate`;
  const foundationUrl = `https://127.0.0.1:${ports.foundation}/validate`;
  console.log(`payload ${Buffer.byteLength(body)} bytes, ${duration} s per measurement, median of ${rounds} paired rounds (ABBA), Node ${process.version}`);
  // Warm-up: JIT, TLS sessions, and the verdict cache (the first request looks every image up).
  await measure(autocannon, portcullisUrl, body, 10, 2);
  await measure(autocannon, baselineUrl, body, 10, 2);
  await measure(autocannon, foundationUrl, body, 10, 2);

  // Informative, no target: every request in a namespace of its own, so no evaluation is reused
  // (verdicts stay cached). This is the cost of the first pod of a new workload.
  let fresh = 0;
  const coldBody = () => body.replaceAll('"shop"', `"cold-${(fresh += 1)}"`);
  const coldRuns: Measured[] = [];
  const coldBaseRuns: Measured[] = [];

  const rows: string[] = [];
  const notes: string[] = [];
  let pass = true;
  for (const connections of [10, 50]) {
    const baseRuns: Measured[] = [];
    const ourRuns: Measured[] = [];
    const foundationRuns: Measured[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const bare = () => measure(autocannon, baselineUrl, body, connections, duration, child);
      const validate = () => measure(autocannon, portcullisUrl, body, connections, duration, child);
      if (round % 2 === 0) {
        baseRuns.push(await bare());
        ourRuns.push(await validate());
      } else {
        ourRuns.push(await validate());
        baseRuns.push(await bare());
      }
      foundationRuns.push(await measure(autocannon, foundationUrl, body, connections, duration, child));
      if (connections === 10) {
        coldBaseRuns.push(baseRuns.at(-1) as Measured);
        coldRuns.push(await measure(autocannon, portcullisUrl, coldBody, connections, duration, child));
      }
    }
    const base = median(baseRuns);
    const ours = median(ourRuns);
    const layer = median(foundationRuns);
    notes.push(
      `${connections} connections: shared HTTP layer + echo ${layer.rps.toFixed(0)} req/s, p50 / p99 ${layer.p50} / ${layer.p99} ms, ${layer.cpu.toFixed(0)} CPU µs/req (${(layer.rps / base.rps).toFixed(2)}× bare)`,
    );
    const throughput = paired(ourRuns, baseRuns, (run) => run.requests.average);
    const tail = paired(baseRuns, ourRuns, (run) => Math.max(run.latency.p99, 1));
    const cpu = paired(baseRuns, ourRuns, (run) => run.cpuPerRequest ?? 0);
    notes.push(`${connections} connections: per-round throughput ratios ${throughput.all.map((ratio) => ratio.toFixed(2)).join(', ')}`);
    pass &&= throughput.median >= 0.8 && 1 / tail.median <= 2;
    rows.push(
      `| ${connections} | ${base.rps.toFixed(0)} | ${base.p50} / ${base.p99} | ${base.cpu.toFixed(0)} | ${ours.rps.toFixed(0)} | ${ours.p50} / ${ours.p99} | ${ours.cpu.toFixed(0)} | ${throughput.median.toFixed(2)}× (${throughput.range}) | ${(1 / tail.median).toFixed(2)}× | ${cpu.median.toFixed(2)}× |`,
    );
  }
  const stopped = new Promise<{ recorded?: number }>((resolve) => child.once('message', (message) => resolve(message as { recorded?: number })));
  child.send('stop');
  const { recorded } = await stopped;
  console.log('| connections | bare req/s | bare p50 / p99 ms | bare CPU µs/req | validate req/s | validate p50 / p99 ms | validate CPU µs/req | throughput ratio (range) | p99 ratio | CPU-bound throughput ratio |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  for (const note of notes) console.log(note);
  const cold = median(coldRuns);
  const coldRatio = paired(coldRuns, coldBaseRuns, (run) => run.requests.average);
  console.log(
    `10 connections, no evaluation reused (a new namespace per request): ${cold.rps.toFixed(0)} req/s, p50 / p99 ${cold.p50} / ${cold.p99} ms, ${cold.cpu.toFixed(0)} CPU µs/req (${coldRatio.median.toFixed(2)}× bare; informative, no target)`,
  );
  console.log(`decisions recorded: ${recorded ?? 0}`);
  console.log(pass ? 'targets met (≥ 0.8× throughput, p99 ≤ 2×)' : 'TARGETS MISSED (≥ 0.8× throughput, p99 ≤ 2×)');
  process.exitCode = pass ? 0 : 1;
}

const entry = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (process.argv.includes('--serve')) await serve();
else if (entry) await main();
