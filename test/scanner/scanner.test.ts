import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VULNERABILITY_REPORT_MIME } from '../../src/harbor/report.js';
import { manualClock } from '../../src/scanner/clock.js';
import type { CredentialIssuer } from '../../src/scanner/ports.js';
import { testTls } from '../helpers/tls.js';
import { HTPASSWD_USER, startDistribution, type Distribution } from '../trivy-standin/distribution.js';
import { scannerHarness, TestEvents, type Harness, type HarnessOptions } from './harness.js';

let registry: Distribution;
const images: Record<string, { digest: string }> = {};
const issued: { project: string; actions: readonly string[]; ttl: number }[] = [];
const credentials: CredentialIssuer = {
  async issueRobotCredential(project, actions, ttl) {
    issued.push({ project, actions, ttl });
    return HTPASSWD_USER;
  },
};
const wrongCredentials: CredentialIssuer = { issueRobotCredential: async () => ({ username: 'scanner', password: 'expired-robot' }) };
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

beforeAll(async () => {
  registry = await startDistribution({ auth: true });
  images.photon = await registry.push('team/photon', '3.0', { labels: { 'portcullis.test/trivy-report': 'photon-30' } });
  images.clean = await registry.push('team/clean', '1.0', { labels: { 'portcullis.test/trivy-report': 'alpine-39-skip' } });
  images.hang = await registry.push('team/hang', '1.0', { labels: { 'portcullis.test/trivy-mode': 'hang' } });
  images.chart = await registry.push('charts/app', '0.1.0', { configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
  images.debian = await registry.push('team/debian', 'buster', { labels: { 'portcullis.test/trivy-report': 'debian-buster' } });
});
afterAll(async () => registry?.close());

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const harness of harnesses.splice(0)) await harness.dispose();
});

async function harness(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  const created = await scannerHarness({ registryHost: registry.host, caPem: testTls().ca.cert, credentials, ...options });
  harnesses.push(created);
  await created.start();
  await created.scanner.status.settled();
  return created;
}

/**
 * Waits (up to 5 s) for `pid` to be gone. SIGKILL is delivered at once but a loaded machine may take
 * a moment to schedule the dying process; a process that survives the kill never goes away.
 */
async function gone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Whether `pid` is a live process (a zombie awaiting its reaper counts as gone). */
function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('the scanner with the Trivy stand-in against a registry with basic auth', () => {
  it('scans a pushed image with a short-lived robot credential passed in the environment, and stores the Harbor report', async () => {
    const events = new TestEvents();
    const scanner = await harness({ events });
    await events.emit({ type: 'artifact.pushed', repository: 'team/photon', digest: images.photon!.digest, mediaType: MANIFEST, tag: '3.0', configMediaType: 'application/vnd.oci.image.config.v1+json' });
    const job = await scanner.scanner.store.latestJob(images.photon!.digest);
    expect(job?.trigger).toBe('push');
    expect((await scanner.scanner.queue.settled(job!.id)).status).toBe('succeeded');

    const [scan] = scanner.scans();
    expect(scan?.argv).toEqual([
      'image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '600s', '--cache-dir', expect.stringContaining('trivy-cache'),
      `${registry.host}/team/photon@${images.photon!.digest}`,
    ]);
    expect(scanner.invocations().find((entry) => entry.argv[0] === 'image')).toMatchObject({ username: 'scanner', passwordSet: true, sslCertFile: expect.stringContaining('ca-bundle.pem') });
    expect(JSON.stringify(scanner.invocations())).not.toContain(HTPASSWD_USER.password);
    expect(issued.at(-1)).toEqual({ project: 'team', actions: ['pull'], ttl: 660 });

    const overview = await scanner.scanPort.overview(images.photon!.digest);
    expect(overview?.[VULNERABILITY_REPORT_MIME]).toMatchObject({
      report_id: job!.id,
      scan_status: 'Success',
      severity: 'Critical',
      summary: { total: 3, fixable: 3, summary: { Critical: 2, High: 1 } },
      complete_percent: 100,
      scanner: { name: 'Trivy', vendor: 'Aqua Security' },
    });
    const report = await scanner.scanPort.report(images.photon!.digest);
    expect(report?.artifact).toEqual({ repository: 'team/photon', digest: images.photon!.digest, tag: '3.0', mime_type: MANIFEST });
    const verdict = await scanner.scanner.verdict({ repository: 'team/photon', digest: images.photon!.digest, triggerScan: true });
    expect(verdict.state).toBe('scanned');
    expect(verdict.state === 'scanned' && verdict.findings.map((finding) => finding.severity).sort()).toEqual(['Critical', 'Critical', 'High']);
  });

  it('runs Trivy once for 100 concurrent scan requests of one digest', async () => {
    const scanner = await harness();
    const finished: { digest: string; status: string }[] = [];
    scanner.scanner.onScanFinished((job) => finished.push({ digest: job.digest, status: job.status }));
    await Promise.all(Array.from({ length: 100 }, () => scanner.scanPort.requestScan({ repository: 'team/clean', digest: images.clean!.digest, mediaType: MANIFEST })));
    const job = await scanner.scanner.store.latestJob(images.clean!.digest);
    expect((await scanner.scanner.queue.settled(job!.id)).status).toBe('succeeded');
    expect(scanner.scans()).toHaveLength(1);
    expect(finished).toEqual([{ digest: images.clean!.digest, status: 'succeeded' }]);
    expect((await scanner.scanPort.overview(images.clean!.digest))?.[VULNERABILITY_REPORT_MIME]).toMatchObject({ severity: 'None', summary: { total: 0, fixable: 0, summary: {} } });
  });

  it('does not scan pushes to a project with auto_scan off', async () => {
    const events = new TestEvents();
    const scanner = await harness({ events, projectSettings: { projectSettings: async (name) => ({ autoScan: name !== 'team' }) } });
    await events.emit({ type: 'artifact.pushed', repository: 'team/clean', digest: images.clean!.digest, mediaType: MANIFEST });
    await events.emit({ type: 'tag.deleted', repository: 'other/clean', digest: images.clean!.digest, mediaType: MANIFEST });
    expect(await scanner.scanner.store.latestJob(images.clean!.digest)).toBeUndefined();
  });

  it('records a pushed Helm chart as unsupported without running Trivy, and shows no scan overview', async () => {
    const events = new TestEvents();
    const scanner = await harness({ events });
    await events.emit({ type: 'artifact.pushed', repository: 'charts/app', digest: images.chart!.digest, mediaType: MANIFEST, configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
    const job = await scanner.scanner.store.latestJob(images.chart!.digest);
    expect((await scanner.scanner.queue.settled(job!.id)).status).toBe('succeeded');
    expect(scanner.scans()).toHaveLength(0);
    expect(await scanner.scanner.verdict({ repository: 'charts/app', digest: images.chart!.digest, triggerScan: true })).toEqual({
      state: 'unsupported',
      digest: images.chart!.digest,
      reason: 'a Helm chart is not a container image; Trivy scans images only',
    });
    expect(await scanner.scanPort.overview(images.chart!.digest)).toBeUndefined();
  });

  it('learns from Trivy that an artifact of unknown type is not an image: unsupported, not failed', async () => {
    const scanner = await harness();
    const verdict = await scanner.scanner.verdict({ repository: 'charts/app', digest: images.chart!.digest, triggerScan: true });
    expect(verdict.state).toBe('unscanned');
    const job = await scanner.scanner.store.latestJob(images.chart!.digest);
    expect((await scanner.scanner.queue.settled(job!.id)).status).toBe('succeeded');
    const after = await scanner.scanner.verdict({ repository: 'charts/app', digest: images.chart!.digest, triggerScan: true });
    expect(after).toMatchObject({ state: 'unsupported', reason: expect.stringContaining('unsupported MediaType') });
  });

  it('kills the whole Trivy process tree when a scan outlives its timeout, and fails the job', async () => {
    // Killed 1 s + 3 s of grace after the start: time enough, even on a loaded machine, for the
    // stand-in to pull the image and reach its hang (which ignores Trivy's own --timeout).
    const scanner = await harness({ config: { timeoutSeconds: 1 }, killGraceMs: 3000 });
    await scanner.scanPort.requestScan({ repository: 'team/hang', digest: images.hang!.digest, mediaType: MANIFEST });
    const job = await scanner.scanner.store.latestJob(images.hang!.digest);
    const settled = await scanner.scanner.queue.settled(job!.id);
    expect(settled).toMatchObject({ status: 'failed', attempts: 1, error: 'trivy did not finish within 1s; its process tree was killed' });
    const pids = JSON.parse(readFileSync(scanner.pidFile, 'utf8')) as { pid: number; grandchild: number };
    expect(await gone(pids.pid)).toBe(true);
    expect(await gone(pids.grandchild)).toBe(true);
    expect(await scanner.scanner.verdict({ repository: 'team/hang', digest: images.hang!.digest, triggerScan: true })).toMatchObject({
      state: 'failed',
      reason: 'scan failed: trivy did not finish within 1s; its process tree was killed',
    });
  });

  it('fails without retrying when the registry refuses the robot credential, and tries again when asked an hour later', async () => {
    const clock = manualClock(new Date());
    const scanner = await harness({ credentials: wrongCredentials, clock });
    await scanner.scanPort.requestScan({ repository: 'team/debian', digest: images.debian!.digest, mediaType: MANIFEST });
    const job = await scanner.scanner.store.latestJob(images.debian!.digest);
    const settled = await scanner.scanner.queue.settled(job!.id);
    expect(settled.status).toBe('failed');
    expect(settled.attempts).toBe(1);
    expect(settled.error).toContain('UNAUTHORIZED');
    const ask = () => scanner.scanner.verdict({ repository: 'team/debian', digest: images.debian!.digest, triggerScan: true });
    expect(await ask()).toMatchObject({ state: 'failed', reason: expect.stringContaining('UNAUTHORIZED') });
    expect((await scanner.scanner.store.latestJob(images.debian!.digest))?.id).toBe(job!.id);
    clock.advance(60 * 60_000);
    expect((await ask()).state).toBe('failed');
    const retry = await scanner.scanner.store.latestJob(images.debian!.digest);
    expect(retry?.id).not.toBe(job!.id);
    expect(retry?.trigger).toBe('rescan');
    await scanner.scanner.queue.settled(retry!.id);
  });

  it('is not ready without a database, says why everywhere, and scans once the database appears', async () => {
    const scanner = await harness({ control: { mode: 'no-db' } });
    const readiness = await scanner.readiness.report();
    expect(readiness.ready).toBe(false);
    expect(readiness.checks.trivy?.reason).toMatch(/^not ready: vulnerability database not found in .*trivy-cache and the download failed: .*failed to download vulnerability DB/);
    expect(await scanner.systemInfo()).toMatchObject({ ready: false, status: readiness.checks.trivy?.reason });
    expect(await scanner.health()).toEqual([{ name: 'trivy', status: 'unhealthy', error: readiness.checks.trivy?.reason }]);
    const verdict = await scanner.scanner.verdict({ repository: 'team/debian', digest: images.debian!.digest, triggerScan: true });
    expect(verdict).toMatchObject({ state: 'unavailable', reason: expect.stringMatching(/^scanner not ready: vulnerability database not found/) });
    const job = await scanner.scanner.store.latestJob(images.debian!.digest);
    expect(job?.status).toBe('queued');

    scanner.control({});
    await scanner.scanner.status.refresh();
    expect((await scanner.readiness.report()).ready).toBe(true);
    expect(await scanner.health()).toEqual([{ name: 'trivy', status: 'healthy' }]);
    expect((await scanner.scanner.queue.settled(job!.id)).status).toBe('succeeded');
    expect((await scanner.scanner.verdict({ repository: 'team/debian', digest: images.debian!.digest, triggerScan: true })).state).toBe('scanned');
  });

  it('is not ready when trivy is not installed, naming the missing binary', async () => {
    const scanner = await harness({ config: { trivyPath: '/nonexistent/trivy' } });
    expect((await scanner.readiness.report()).checks.trivy?.reason).toBe(
      'not ready: trivy not found: "/nonexistent/trivy" is not on PATH and is not a file (install Trivy or set scanner.trivyPath)',
    );
  });

  it('rescans when the vulnerability database changes and when a report outgrows maxReportAgeHours', async () => {
    const clock = manualClock(new Date());
    const scanner = await harness({ clock, config: { maxReportAgeHours: 24 } });
    const digest = images.clean!.digest;
    const ask = () => scanner.scanner.verdict({ repository: 'team/clean', digest, triggerScan: true });
    await ask();
    await scanner.scanner.queue.settled((await scanner.scanner.store.latestJob(digest))!.id);
    expect((await ask()).state).toBe('scanned');
    expect(scanner.scans()).toHaveLength(1);

    scanner.control({ dbUpdatedAt: '2026-03-03T00:00:00Z' });
    await scanner.scanner.status.refresh();
    // The change itself queues the rescan: nobody has asked for the verdict yet.
    await vi.waitFor(async () => expect((await scanner.scanner.store.latestJob(digest))?.trigger).toBe('rescan'));
    expect((await ask()).state).toBe('scanned');
    const rescan = await scanner.scanner.store.latestJob(digest);
    expect(rescan?.trigger).toBe('rescan');
    await scanner.scanner.queue.settled(rescan!.id);
    expect(scanner.scans()).toHaveLength(2);
    expect((await ask()).state).toBe('scanned');
    expect(scanner.scans()).toHaveLength(2);

    clock.advance(25 * 3600_000);
    await ask();
    const aged = await scanner.scanner.store.latestJob(digest);
    expect(aged?.id).not.toBe(rescan?.id);
    await scanner.scanner.queue.settled(aged!.id);
    expect(scanner.scans()).toHaveLength(3);
  });
});
