/**
 * `npm run bench:registry`: Portcullis's registry against Debian's `docker-registry` (CNCF
 * distribution 2.8.2) on the same machine, both over TLS on loopback with filesystem storage in a
 * temporary directory, measured in the same run:
 *
 * - push and pull of a 100 MB single-layer image with skopeo, and for comparison skopeo's own time
 *   for the same copy from the OCI layout without a registry, skopeo's CPU time per pull and the
 *   median of the per-round pull ratios;
 * - manifest GET and HEAD: requests/s and p99 at 10 and 50 connections (autocannon for GET, a
 *   minimal keep-alive client for HEAD, see headLoad);
 * - one-stream blob GET throughput (MB/s) with curl over HTTP/1.1 (the target figure), and for
 *   reference with curl's default protocol and with one undici stream (see blobGetCurl), and
 *   curl's own CPU time per GET;
 * - the registry process's RSS while a 1 GiB blob is pushed (both run as child processes).
 *
 * Portcullis runs as `portcullis registry` from the build (`bin/portcullis.js`: compiled
 * JavaScript, as installed; the npm script builds first) with the real identity subsystem: the
 * image lives in a public project, pushes authenticate as admin through the token flow, pulls are
 * anonymous. That is the request path a user gets, not a stripped-down one. distribution runs
 * without authentication.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { fetch } from 'undici';
import { buildLargeOciLayout, type Layout } from '../helpers/oci-layout.js';
import { repoRoot } from '../helpers/cli.js';
import { skopeoOk } from '../helpers/skopeo.js';
import { tempDir } from '../helpers/tmp.js';
import { testTls, trustingAgent } from '../helpers/tls.js';

const MB = 1024 * 1024;
const IMAGE_BYTES = 100 * MB;
const RSS_BLOB_BYTES = 1024 * MB;
const ADMIN_PASSWORD = 'bench-admin-password';
const MANIFEST_DURATION = Number(process.env.BENCH_DURATION ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Target {
  name: string;
  host: string;
  child: ChildProcess;
  /** Repository the image is pushed to (one per push round; pulls read the first). */
  repository: string;
  /** skopeo credentials for pushing, when needed. */
  creds?: string;
}

interface Measured {
  requests: { average: number };
  latency: { p99: number; p50: number };
  non2xx: number;
  errors: number;
}

function isMeasured(value: unknown): value is Measured {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.requests === 'object' && typeof record.latency === 'object' && typeof record.non2xx === 'number';
}

type Autocannon = (options: Record<string, unknown>) => Promise<unknown>;

function loadAutocannon(): Autocannon {
  const loaded: unknown = createRequire(import.meta.url)('autocannon');
  if (typeof loaded !== 'function') throw new Error('autocannon did not load as a function');
  return loaded as Autocannon;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const tls = testTls();
const agent = trustingAgent(tls.ca.cert);

async function waitForV2(host: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`registry at ${host} exited with ${child.exitCode}`);
    try {
      const response = await fetch(`https://${host}/v2/`, { dispatcher: agent });
      await response.arrayBuffer();
      return;
    } catch {
      // Not listening yet: distribution gives no readiness signal, so poll its socket.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`registry at ${host} never answered`);
}

async function startDistribution(work: string): Promise<Target> {
  const port = await freePort();
  const config = join(work, 'distribution.yml');
  writeFileSync(join(work, 'tls.crt'), tls.serving.cert);
  writeFileSync(join(work, 'tls.key'), tls.serving.key);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: error, accesslog: { disabled: true } }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(work, 'distribution')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  tls: { certificate: ${join(work, 'tls.crt')}, key: ${join(work, 'tls.key')} }`,
      '',
    ].join('\n'),
  );
  // Its 404 answers to skopeo's blob probes are logged as errors: noise here, so stderr is dropped.
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'ignore'] });
  const host = `127.0.0.1:${port}`;
  await waitForV2(host, child);
  return { name: 'distribution', host, child, repository: 'bench/big' };
}

async function startPortcullis(work: string): Promise<Target> {
  writeFileSync(join(work, 'tls.crt'), tls.serving.cert);
  writeFileSync(join(work, 'tls.key'), tls.serving.key);
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin/portcullis.js'), 'registry', '--data-dir', join(work, 'portcullis'), '--listen', '127.0.0.1:0', '--tls-cert', join(work, 'tls.crt'), '--tls-key', join(work, 'tls.key')],
    { cwd: repoRoot, env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: ADMIN_PASSWORD, PORTCULLIS_LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const host = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /registry listening on https:\/\/(127\.0\.0\.1:\d+)/.exec(out);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`portcullis registry exited with ${code}`)));
  });
  const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
  const created = await fetch(`https://${host}/api/v2.0/projects`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/json' },
    body: JSON.stringify({ project_name: 'bench', metadata: { public: 'true' } }),
    dispatcher: agent,
  });
  if (created.status !== 201) throw new Error(`creating project bench: ${created.status} ${await created.text()}`);
  return { name: 'portcullis', host, child, repository: 'bench/big', creds: `admin:${ADMIN_PASSWORD}` };
}

async function timed<T>(action: () => Promise<T>): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function push(target: Target, layout: Layout, certDir: string, tag: string): Promise<number> {
  return timed(() =>
    // skopeo gzips the layout's uncompressed layer on the way to a registry, whichever it is: its
    // compression is part of both sides' push time. (--dest-decompress, used until 2026-12-04, only
    // applies to dir: destinations and changed nothing here.)
    skopeoOk(['copy', '--dest-cert-dir', certDir, ...(target.creds ? ['--dest-creds', target.creds] : []), layout.reference, `docker://${target.host}/${target.repository}:${tag}`], { timeoutMs: 600_000 }),
  );
}

async function pull(target: Target, certDir: string, into: string): Promise<number> {
  return timed(() => skopeoOk(['copy', '--src-cert-dir', certDir, `docker://${target.host}/${target.repository}:1`, `dir:${into}`], { timeoutMs: 600_000 }));
}

/** A blob as a manifest's descriptor names it. */
interface BlobRef {
  digest: string;
  size: number;
}

/** The image's layer as `target` holds it: skopeo gzips the layout's uncompressed layer on the way. */
async function pushedLayer(target: Target): Promise<BlobRef> {
  const response = await fetch(`https://${target.host}/v2/${target.repository}/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' }, dispatcher: agent });
  const manifest: unknown = await response.json();
  const layers = typeof manifest === 'object' && manifest !== null && 'layers' in manifest && Array.isArray(manifest.layers) ? (manifest.layers as unknown[]) : [];
  const first = layers[0];
  if (typeof first !== 'object' || first === null || !('digest' in first) || !('size' in first) || typeof first.digest !== 'string' || typeof first.size !== 'number') throw new Error(`${target.name}: manifest without a layer`);
  return { digest: first.digest, size: first.size };
}

const execFileAsync = promisify(execFile);

/**
 * One-stream blob GET with curl: MB/s, timed from the request sent to the last byte (handshakes
 * excluded; the undici stream usually reuses a kept-alive connection), and the HTTP version curl
 * used. `http1` forces HTTP/1.1: Portcullis serves HTTP/1.1 only, while distribution offers HTTP/2,
 * which curl takes by default; the like-for-like figure is HTTP/1.1 for both, the default is what a
 * curl user gets. Status and size are checked; the content is not hashed here (the skopeo pulls
 * verify it).
 */
async function blobGetCurl(target: Target, layer: BlobRef, caFile: string, http1: boolean): Promise<{ mbps: number; protocol: string }> {
  const { stdout } = await execFileAsync(
    'curl',
    [
      ...(http1 ? ['--http1.1'] : []),
      '--silent', '--show-error', '--max-time', '600', '--cacert', caFile, '--output', '/dev/null',
      '--write-out', '%{http_code} %{size_download} %{time_pretransfer} %{time_total} %{http_version}',
      `https://${target.host}/v2/${target.repository}/blobs/${layer.digest}`,
    ],
    // LC_ALL=C: curl prints its times with the locale's decimal separator.
    { env: { ...process.env, LC_ALL: 'C' } },
  );
  const fields = stdout.trim().split(' ');
  const [status, size, pretransfer, total] = fields.slice(0, 4).map(Number);
  const protocol = fields[4] ?? '';
  if (fields.length !== 5 || status !== 200 || size !== layer.size) throw new Error(`${target.name}: blob GET with curl: expected 200 with ${layer.size} bytes, got "${stdout.trim()}"`);
  if (http1 && protocol !== '1.1') throw new Error(`${target.name}: blob GET with curl: asked for HTTP/1.1, got HTTP/${protocol}`);
  const seconds = (total ?? NaN) - (pretransfer ?? NaN);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`${target.name}: blob GET with curl: unusable times in "${stdout.trim()}"`);
  return { mbps: size / MB / seconds, protocol: `HTTP/${protocol}` };
}

async function blobGetUndici(target: Target, layer: BlobRef): Promise<number> {
  let bytes = 0;
  const seconds = await timed(async () => {
    const response = await fetch(`https://${target.host}/v2/${target.repository}/blobs/${layer.digest}`, { dispatcher: agent });
    if (response.status !== 200 || !response.body) throw new Error(`${target.name}: blob GET ${response.status}`);
    for await (const chunk of response.body) bytes += (chunk as Uint8Array).length;
  });
  if (bytes !== layer.size) throw new Error(`${target.name}: blob GET with undici: ${bytes} bytes, expected ${layer.size}`);
  return bytes / MB / seconds;
}

async function manifestLoad(autocannon: Autocannon, target: Target, method: 'GET', connections: number, duration: number): Promise<Measured> {
  const result = await autocannon({
    url: `https://${target.host}/v2/${target.repository}/manifests/1`,
    method,
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    connections,
    pipelining: 1,
    duration,
    tlsOptions: { ca: tls.ca.cert },
  });
  if (!isMeasured(result)) throw new Error('autocannon returned an unexpected result');
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${target.name} manifest ${method}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result;
}

/**
 * HEAD load. autocannon and wrk both wait for a body after a HEAD answer that carries
 * Content-Length (as the spec requires), and undici's HEAD path is slow enough to be the bottleneck,
 * so HEAD is measured with a minimal keep-alive HTTP/1.1 client over TLS: `connections` sockets, each
 * sending its next request when the previous answer's headers arrived (a HEAD answer has no body).
 */
async function headLoad(target: Target, connections: number, duration: number): Promise<Measured> {
  const [host, port] = target.host.split(':') as [string, string];
  const request = Buffer.from(`HEAD /v2/${target.repository}/manifests/1 HTTP/1.1\r\nHost: ${target.host}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n`);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const deadline = performance.now() + duration * 1000;
  const worker = () =>
    new Promise<void>((resolve) => {
      const socket = tlsConnect({ host, port: Number(port), ca: tls.ca.cert });
      let buffered = '';
      let sentAt = 0;
      const send = () => {
        if (performance.now() >= deadline) {
          socket.end();
          return;
        }
        sentAt = performance.now();
        socket.write(request);
      };
      socket.on('secureConnect', send);
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        let end = buffered.indexOf('\r\n\r\n');
        while (end >= 0) {
          if (!buffered.startsWith('HTTP/1.1 200')) non2xx += 1;
          latencies.push(performance.now() - sentAt);
          buffered = buffered.slice(end + 4);
          end = buffered.indexOf('\r\n\r\n');
          send();
        }
      });
      socket.on('error', () => {
        errors += 1;
        resolve();
      });
      socket.on('close', () => resolve());
    });
  const began = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  if (non2xx > 0 || errors > 0) throw new Error(`${target.name} manifest HEAD: ${non2xx} non-2xx, ${errors} errors`);
  return { requests: { average: latencies.length / elapsed }, latency: { p50: at(0.5), p99: at(0.99) }, non2xx, errors };
}

/** The fields of /proc/PID/stat after the command name: index 0 is field 3 (state). */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds (user + system) used so far by this process's children that have exited and been
 * waited for: around one skopeo run, the client's own CPU time (the registries are children too,
 * but they run until the end and are not counted before that).
 */
function exitedChildrenCpuSeconds(): number {
  const fields = statFields('self');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Runs `action`, which runs one client process to its end, and returns its result with that client's CPU seconds. */
async function withClientCpu<T>(action: () => Promise<T>): Promise<{ value: T; clientCpu: number }> {
  const before = exitedChildrenCpuSeconds();
  const value = await action();
  return { value, clientCpu: exitedChildrenCpuSeconds() - before };
}

/** Runs `action` and returns its result with the CPU seconds `target`'s process spent meanwhile. */
async function withCpu<T>(target: Target, action: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const before = cpuSeconds(target.child.pid);
  const value = await action();
  return { value, cpu: cpuSeconds(target.child.pid) - before };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Streams a 1 GiB blob in one PATCH while sampling the registry's RSS; returns the peak growth. */
async function rssDuringPush(target: Target): Promise<{ before: number; peak: number }> {
  const pid = target.child.pid;
  if (pid === undefined) throw new Error('no pid');
  const auth = target.creds ? { authorization: `Basic ${Buffer.from(target.creds).toString('base64')}` } : {};
  const started = await fetch(`https://${target.host}/v2/${target.repository}-rss/blobs/uploads/`, { method: 'POST', headers: auth, dispatcher: agent });
  await started.arrayBuffer();
  const location = started.headers.get('location');
  if (started.status !== 202 || !location) throw new Error(`${target.name}: upload start ${started.status}`);
  const url = location.startsWith('http') ? location : `https://${target.host}${location}`;
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 20);
  const hash = createHash('sha256');
  const block = randomBytes(4 * MB);
  async function* body(): AsyncIterable<Uint8Array> {
    for (let sent = 0; sent < RSS_BLOB_BYTES; sent += block.length) {
      // Vary each block so that nothing could be deduplicated along the way.
      block.writeUInt32BE(sent / block.length, 0);
      hash.update(block);
      yield block;
    }
  }
  try {
    const patched = await fetch(url, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: body(), duplex: 'half', dispatcher: agent });
    await patched.arrayBuffer();
    if (patched.status !== 202) throw new Error(`${target.name}: PATCH ${patched.status}`);
    const next = patched.headers.get('location') ?? location;
    const finishUrl = `${next.startsWith('http') ? next : `https://${target.host}${next}`}${next.includes('?') ? '&' : '?'}digest=sha256:${hash.digest('hex')}`;
    const finished = await fetch(finishUrl, { method: 'PUT', headers: auth, dispatcher: agent });
    await finished.arrayBuffer();
    if (finished.status !== 201) throw new Error(`${target.name}: PUT ${finished.status}`);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssBytes(pid));
  return { before, peak };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function ratio(ours: number, base: number): string {
  return `${(ours / base).toFixed(2)}×`;
}

async function main(): Promise<void> {
  const work = tempDir('portcullis-bench-registry-');
  const targets: Target[] = [];
  try {
    console.log(`Node ${process.version}; building ${ROUNDS} layouts of a ${IMAGE_BYTES / MB} MB single layer…`);
    // One layout per round: skopeo remembers where it pushed a blob (its blob-info cache) and would
    // mount it instead of sending it again.
    const layouts: Layout[] = [];
    for (let round = 0; round < ROUNDS; round += 1) layouts.push(await buildLargeOciLayout(join(work.path, `layout-${round}`), IMAGE_BYTES - 2048, { tag: 'big' }));
    const certDir = join(work.path, 'certs.d');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(certDir, { recursive: true });
    writeFileSync(join(certDir, 'ca.crt'), tls.ca.cert);
    const distribution = await startDistribution(work.path);
    targets.push(distribution);
    const portcullis = await startPortcullis(work.path);
    targets.push(portcullis);

    // The machine is shared: push, pull and blob GET are repeated ROUNDS times, alternating which
    // registry goes first, and the best of each is kept (the least disturbed run of each side);
    // manifest loads run once in ABBA order (best of two per side), the RSS sample once.
    // The registry's own CPU time per operation is reported too: it is much less disturbed by other
    // load on the machine than wall-clock time (averaged over the rounds).
    const results = new Map<string, Record<string, number>>(
      targets.map((target) => [target.name, { push: Infinity, pull: Infinity, blobMBps: 0, curlDefaultMBps: 0, undiciMBps: 0, pushCpu: 0, pullCpu: 0, pullClientCpu: 0, blobClientCpu: 0, blobCpu: 0, curlDefaultCpu: 0, undiciCpu: 0 }]),
    );
    const figures = (target: Target) => results.get(target.name) as Record<string, number>;
    const order = (round: number) => (round % 2 === 0 ? targets : [...targets].reverse());
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const target of order(round)) {
        // A fresh repository each round, so that every push sends the layer.
        const { value: seconds, cpu } = await withCpu(target, () => push({ ...target, repository: `${target.repository}-${round}` }, layouts[round] as Layout, certDir, '1'));
        figures(target).push = Math.min(figures(target).push ?? Infinity, seconds);
        figures(target).pushCpu = (figures(target).pushCpu ?? 0) + cpu / ROUNDS;
      }
    }
    for (const target of targets) target.repository = `${target.repository}-0`;
    // For comparison: skopeo's own time for the same copy into dir:, from the OCI layout instead of
    // a registry (no network, no server).
    // skopeo's own CPU time per pull is measured too: when it is about the pull's wall-clock time,
    // the client is the bottleneck and the registries can only tie (see docs/benchmarks.md).
    let skopeoAlone = Infinity;
    const pullRatios: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const seconds = new Map<string, number>();
      for (const target of order(round)) {
        const { value: { value, clientCpu }, cpu } = await withCpu(target, () => withClientCpu(() => pull(target, certDir, join(work.path, `pull-${target.name}-${round}`))));
        seconds.set(target.name, value);
        figures(target).pull = Math.min(figures(target).pull ?? Infinity, value);
        figures(target).pullCpu = (figures(target).pullCpu ?? 0) + cpu / ROUNDS;
        figures(target).pullClientCpu = (figures(target).pullClientCpu ?? 0) + clientCpu / ROUNDS;
        await rm(join(work.path, `pull-${target.name}-${round}`), { recursive: true, force: true });
      }
      pullRatios.push((seconds.get('distribution') ?? 0) / (seconds.get('portcullis') ?? Infinity));
      const into = join(work.path, `copy-${round}`);
      skopeoAlone = Math.min(skopeoAlone, await timed(() => skopeoOk(['copy', (layouts[0] as Layout).reference, `dir:${into}`], { timeoutMs: 600_000 })));
      await rm(into, { recursive: true, force: true });
    }
    // skopeo's gzip output is the same for the same layer, so both registries must hold the same
    // blob: each one's manifest is checked against the other's, and blob GETs fetch the same bytes.
    const layer = await pushedLayer(distribution);
    const ourLayer = await pushedLayer(portcullis);
    if (ourLayer.digest !== layer.digest || ourLayer.size !== layer.size) throw new Error(`the registries hold different layers: ${layer.digest} (${layer.size} bytes) at distribution, ${ourLayer.digest} (${ourLayer.size} bytes) at Portcullis`);
    const caFile = join(certDir, 'ca.crt');
    /** The HTTP version curl chose by default, per registry. */
    const curlDefaultProtocol = new Map<string, Set<string>>(targets.map((target) => [target.name, new Set()]));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const target of order(round)) {
        const curl = await withCpu(target, () => withClientCpu(() => blobGetCurl(target, layer, caFile, true)));
        figures(target).blobMBps = Math.max(figures(target).blobMBps ?? 0, curl.value.value.mbps);
        figures(target).blobClientCpu = (figures(target).blobClientCpu ?? 0) + curl.value.clientCpu / ROUNDS;
        figures(target).blobCpu = (figures(target).blobCpu ?? 0) + curl.cpu / ROUNDS;
        const curlDefault = await withCpu(target, () => blobGetCurl(target, layer, caFile, false));
        figures(target).curlDefaultMBps = Math.max(figures(target).curlDefaultMBps ?? 0, curlDefault.value.mbps);
        figures(target).curlDefaultCpu = (figures(target).curlDefaultCpu ?? 0) + curlDefault.cpu / ROUNDS;
        curlDefaultProtocol.get(target.name)?.add(curlDefault.value.protocol);
        const undici = await withCpu(target, () => blobGetUndici(target, layer));
        figures(target).undiciMBps = Math.max(figures(target).undiciMBps ?? 0, undici.value);
        figures(target).undiciCpu = (figures(target).undiciCpu ?? 0) + undici.cpu / ROUNDS;
      }
    }
    for (const target of targets) {
      const f = figures(target);
      console.log(`${target.name}: push ${f.push?.toFixed(2)} s, pull ${f.pull?.toFixed(2)} s, blob GET ${f.blobMBps?.toFixed(0)} MB/s with curl over HTTP/1.1, ${f.curlDefaultMBps?.toFixed(0)} with curl's default, ${f.undiciMBps?.toFixed(0)} with undici (best of ${ROUNDS})`);
    }

    const autocannon = loadAutocannon();
    const manifestRows: string[] = [];
    const manifestRatios: number[] = [];
    for (const target of targets) await manifestLoad(autocannon, target, 'GET', 10, 2);
    for (const method of ['GET', 'HEAD'] as const) {
      for (const connections of [10, 50]) {
        const load = (target: Target) => (method === 'GET' ? manifestLoad(autocannon, target, 'GET', connections, MANIFEST_DURATION) : headLoad(target, connections, MANIFEST_DURATION));
        const best = new Map<string, Measured & { cpuPerRequest: number }>();
        // ABBA order, best of two for each side.
        for (const target of [distribution, portcullis, portcullis, distribution]) {
          const { value: measured, cpu } = await withCpu(target, () => load(target));
          const cpuPerRequest = (cpu * 1e6) / Math.max(1, measured.requests.average * MANIFEST_DURATION);
          const previous = best.get(target.name);
          if (!previous || measured.requests.average > previous.requests.average) best.set(target.name, { ...measured, cpuPerRequest });
        }
        const base = best.get('distribution') as Measured & { cpuPerRequest: number };
        const ours = best.get('portcullis') as Measured & { cpuPerRequest: number };
        manifestRatios.push(ours.requests.average / base.requests.average);
        manifestRows.push(
          `| manifest ${method}, ${connections} conn | ${base.requests.average.toFixed(0)} req/s, p99 ${base.latency.p99} ms, ${base.cpuPerRequest.toFixed(0)} CPU µs/req | ${ours.requests.average.toFixed(0)} req/s, p99 ${ours.latency.p99} ms, ${ours.cpuPerRequest.toFixed(0)} CPU µs/req | ${ratio(ours.requests.average, base.requests.average)} (CPU ${ratio(base.cpuPerRequest, ours.cpuPerRequest)}) |`,
        );
      }
    }

    const rss: Record<string, { before: number; peak: number }> = {};
    for (const target of targets) rss[target.name] = await rssDuringPush({ ...target, repository: 'bench/rss' });

    const base = results.get('distribution') ?? {};
    const ours = results.get('portcullis') ?? {};
    const protocols = (name: string) => [...(curlDefaultProtocol.get(name) ?? [])].join(' and ');
    const rows = [
      '| measurement | distribution 2.8.2 | Portcullis | ratio, wall clock (CPU) — higher is better |',
      '| --- | --- | --- | --- |',
      `| push 100 MB (skopeo) | ${base.push?.toFixed(2)} s, ${base.pushCpu?.toFixed(2)} CPU s | ${ours.push?.toFixed(2)} s, ${ours.pushCpu?.toFixed(2)} CPU s | ${ratio(base.push ?? 0, ours.push ?? 1)} (CPU ${ratio(base.pushCpu ?? 0, ours.pushCpu ?? 1)}) |`,
      `| pull 100 MB (skopeo) | ${base.pull?.toFixed(2)} s, ${base.pullCpu?.toFixed(2)} CPU s | ${ours.pull?.toFixed(2)} s, ${ours.pullCpu?.toFixed(2)} CPU s | ${ratio(base.pull ?? 0, ours.pull ?? 1)} (CPU ${ratio(base.pullCpu ?? 0, ours.pullCpu ?? 1)}) |`,
      `| pull: skopeo's own CPU time per pull (no target) | ${base.pullClientCpu?.toFixed(2)} CPU s | ${ours.pullClientCpu?.toFixed(2)} CPU s | |`,
      `| pull: median of the ${ROUNDS} per-round ratios (no target) | | | ${ratio(median(pullRatios), 1)} (${ratio(Math.min(...pullRatios), 1)} to ${ratio(Math.max(...pullRatios), 1)}) |`,
      `| skopeo alone: the same copy from the OCI layout into dir:, no registry | | | ${skopeoAlone.toFixed(2)} s, for comparison (no target) |`,
      `| blob GET, one curl stream, HTTP/1.1 | ${base.blobMBps?.toFixed(0)} MB/s, ${base.blobCpu?.toFixed(2)} CPU s | ${ours.blobMBps?.toFixed(0)} MB/s, ${ours.blobCpu?.toFixed(2)} CPU s | ${ratio(ours.blobMBps ?? 0, base.blobMBps ?? 1)} (CPU ${ratio(base.blobCpu ?? 0, ours.blobCpu ?? 1)}) |`,
      `| blob GET: curl's own CPU time per GET over HTTP/1.1, handshake included (no target) | ${base.blobClientCpu?.toFixed(2)} CPU s | ${ours.blobClientCpu?.toFixed(2)} CPU s | |`,
      `| blob GET, one curl stream, curl's default protocol (no target) | ${base.curlDefaultMBps?.toFixed(0)} MB/s, ${base.curlDefaultCpu?.toFixed(2)} CPU s, ${protocols('distribution')} | ${ours.curlDefaultMBps?.toFixed(0)} MB/s, ${ours.curlDefaultCpu?.toFixed(2)} CPU s, ${protocols('portcullis')} | ${ratio(ours.curlDefaultMBps ?? 0, base.curlDefaultMBps ?? 1)} (CPU ${ratio(base.curlDefaultCpu ?? 0, ours.curlDefaultCpu ?? 1)}) |`,
      `| blob GET, one undici stream, HTTP/1.1 (no target) | ${base.undiciMBps?.toFixed(0)} MB/s, ${base.undiciCpu?.toFixed(2)} CPU s | ${ours.undiciMBps?.toFixed(0)} MB/s, ${ours.undiciCpu?.toFixed(2)} CPU s | ${ratio(ours.undiciMBps ?? 0, base.undiciMBps ?? 1)} (CPU ${ratio(base.undiciCpu ?? 0, ours.undiciCpu ?? 1)}) |`,
      ...manifestRows,
      ...targets.map((target) => {
        const sample = rss[target.name] ?? { before: 0, peak: 0 };
        return `| RSS during 1 GiB push (${target.name}) | before ${(sample.before / MB).toFixed(0)} MB, peak ${(sample.peak / MB).toFixed(0)} MB | growth ${((sample.peak - sample.before) / MB).toFixed(1)} MB | |`;
      }),
    ];
    console.log('');
    for (const row of rows) console.log(row);
    const growth = (rss.portcullis?.peak ?? 0) - (rss.portcullis?.before ?? 0);
    const verdicts = [
      { target: 'push ≥ 1.0×', figure: ratio(base.push ?? 0, ours.push ?? 1), met: (base.push ?? 0) / (ours.push ?? Infinity) >= 1 },
      { target: 'pull ≥ 1.0×', figure: ratio(base.pull ?? 0, ours.pull ?? 1), met: (base.pull ?? 0) / (ours.pull ?? Infinity) >= 1 },
      { target: 'blob GET (curl, HTTP/1.1) ≥ 1.0×', figure: ratio(ours.blobMBps ?? 0, base.blobMBps ?? 1), met: (ours.blobMBps ?? 0) / (base.blobMBps ?? Infinity) >= 1 },
      { target: 'manifest GET and HEAD ≥ 2×', figure: `${Math.min(...manifestRatios).toFixed(2)}× at worst`, met: manifestRatios.every((value) => value >= 2) },
      { target: 'RSS growth < 64 MB', figure: `${(growth / MB).toFixed(1)} MB`, met: growth < 64 * MB },
    ];
    const pass = verdicts.every((verdict) => verdict.met);
    console.log('');
    for (const verdict of verdicts) console.log(`${verdict.met ? 'met   ' : 'MISSED'} ${verdict.target}: ${verdict.figure}`);
    console.log(pass ? 'targets met' : 'TARGETS MISSED');
    process.exitCode = pass ? 0 : 1;
  } finally {
    for (const target of targets) {
      if (target.child.exitCode === null) {
        const exited = new Promise((resolve) => target.child.once('exit', resolve));
        target.child.kill('SIGTERM');
        await exited;
      }
    }
    await agent.close();
    work.remove();
  }
}

await main();
