import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { VULNERABILITY_REPORT_MIME, type HarborSeverity, type HarborVulnerabilityReport } from '../../src/harbor/report.js';
import { normalizeTrivyReport } from '../../src/scanner/normalize.js';
import type { TrivyReport } from '../../src/scanner/trivy-report.js';
import type { KeyPair } from '../../src/certs/issue.js';

/**
 * A Harbor v2.0 API stand-in over TLS on loopback: the few endpoints the Harbor verdict source
 * calls (artifact by tag or digest with scan overview, the vulnerabilities addition, scan request),
 * basic auth, Harbor's `{errors:[…]}` envelope. Every JSON body it serves is recorded with the
 * swagger definition it claims to be, so tests validate them against swagger.v2.15.2.yaml.
 * (The included registry serves the same API; its tests can point the same client at it.)
 */
export interface StandinArtifact {
  /** `project/repo[/more]` as in the image reference after the registry host. */
  repository: string;
  digest: string;
  tags: string[];
  type?: 'IMAGE' | 'CHART' | 'CNAB';
  /** Absent: never scanned (no scan_overview). */
  scanStatus?: 'Success' | 'Pending' | 'Running' | 'Scheduled' | 'Error' | 'Stopped';
  report?: HarborVulnerabilityReport;
  /** Overview under another MIME type only (a scanner whose report Portcullis cannot read). */
  foreignMime?: string;
}

export interface ServedBody {
  /** Swagger definition the body must satisfy (`Artifact`, `Errors`) or `VulnerabilityAdditions`. */
  definition: 'Artifact' | 'Errors' | 'VulnerabilityAdditions';
  body: unknown;
}

export interface HarborStandin {
  url: string;
  host: string;
  artifacts: StandinArtifact[];
  served: ServedBody[];
  /** `project/repo@digest` of every scan request received. */
  scanRequests: string[];
  /** Number of API requests received. */
  requests: number;
  /** While true, requests are accepted and never answered (a hung Harbor). */
  hang: boolean;
  close(): Promise<void>;
}

export async function startHarborStandin(options: {
  tls: KeyPair;
  username: string;
  password: string;
  artifacts?: StandinArtifact[];
}): Promise<HarborStandin> {
  const app: FastifyInstance = Fastify({ https: { key: options.tls.key, cert: options.tls.cert } });
  const hung: FastifyReply[] = [];
  const expected = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  const state: Omit<HarborStandin, 'url' | 'host' | 'close'> = {
    artifacts: options.artifacts ?? [],
    served: [],
    scanRequests: [],
    requests: 0,
    hang: false,
  };

  function send(reply: FastifyReply, status: number, definition: ServedBody['definition'], body: unknown) {
    state.served.push({ definition, body });
    return reply.status(status).header('content-type', 'application/json').send(JSON.stringify(body));
  }

  function error(reply: FastifyReply, status: number, code: string, message: string) {
    return send(reply, status, 'Errors', { errors: [{ code, message }] });
  }

  function find(request: FastifyRequest): StandinArtifact | undefined {
    const params = request.params as { project: string; repository: string; reference: string };
    // Fastify decoded the path once; Harbor's repository names are encoded twice.
    const repository = `${params.project}/${decodeURIComponent(params.repository)}`;
    return state.artifacts.find(
      (artifact) => artifact.repository === repository && (artifact.digest === params.reference || artifact.tags.includes(params.reference)),
    );
  }

  app.addHook('onRequest', async (request, reply) => {
    state.requests += 1;
    if (state.hang) {
      hung.push(reply);
      return reply.hijack();
    }
    if (request.headers.authorization !== expected) return error(reply, 401, 'UNAUTHORIZED', 'unauthorized');
    return undefined;
  });

  const base = '/api/v2.0/projects/:project/repositories/:repository/artifacts/:reference';

  app.get(base, async (request, reply) => {
    const artifact = find(request);
    if (!artifact) return error(reply, 404, 'NOT_FOUND', 'artifact not found');
    const query = request.query as { with_scan_overview?: string };
    const body: Record<string, unknown> = {
      id: 1,
      type: artifact.type ?? 'IMAGE',
      media_type: 'application/vnd.oci.image.config.v1+json',
      manifest_media_type: 'application/vnd.oci.image.manifest.v1+json',
      project_id: 1,
      repository_id: 1,
      repository_name: artifact.repository,
      digest: artifact.digest,
      size: 1024,
      push_time: '2026-01-02T03:04:05.000Z',
      pull_time: '0001-01-01T00:00:00.000Z',
      extra_attrs: {},
      addition_links: {
        vulnerabilities: { absolute: false, href: `/api/v2.0/projects/x/repositories/y/artifacts/${artifact.digest}/additions/vulnerabilities` },
      },
    };
    if (query.with_scan_overview === 'true' && artifact.scanStatus !== undefined) {
      const summary: Record<string, unknown> = {
        report_id: '5f62c830-f996-11e9-957f-0242c0a89008',
        scan_status: artifact.scanStatus,
        complete_percent: artifact.scanStatus === 'Success' ? 100 : 0,
        scanner: { name: 'Trivy', vendor: 'Aqua Security', version: 'v0.50.0' },
      };
      if (artifact.scanStatus === 'Success' && artifact.report) {
        summary.severity = artifact.report.severity;
        summary.start_time = '2026-01-02T03:04:05.000Z';
        summary.end_time = artifact.report.generated_at;
        summary.duration = 3;
        summary.summary = countSummary(artifact.report);
      }
      body.scan_overview = { [artifact.foreignMime ?? VULNERABILITY_REPORT_MIME]: summary };
    }
    return send(reply, 200, 'Artifact', body);
  });

  app.get(`${base}/additions/vulnerabilities`, async (request, reply) => {
    const artifact = find(request);
    if (!artifact) return error(reply, 404, 'NOT_FOUND', 'artifact not found');
    const body = artifact.report ? { [VULNERABILITY_REPORT_MIME]: artifact.report } : {};
    return send(reply, 200, 'VulnerabilityAdditions', body);
  });

  app.post(`${base}/scan`, async (request, reply) => {
    const artifact = find(request);
    if (!artifact) return error(reply, 404, 'NOT_FOUND', 'artifact not found');
    state.scanRequests.push(`${artifact.repository}@${artifact.digest}`);
    return reply.status(202).send();
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  const host = `127.0.0.1:${port}`;
  return Object.assign(state, {
    url: `https://${host}`,
    host,
    close: async () => {
      for (const reply of hung.splice(0)) reply.raw.destroy();
      await app.close();
    },
  });
}

function countSummary(report: HarborVulnerabilityReport) {
  const summary: Partial<Record<HarborSeverity, number>> = {};
  for (const item of report.vulnerabilities) summary[item.severity] = (summary[item.severity] ?? 0) + 1;
  return { total: report.vulnerabilities.length, fixable: report.vulnerabilities.filter((item) => item.fix_version).length, summary };
}

/**
 * A Harbor vulnerability report made from a Trivy report, the way harbor-scanner-trivy maps one
 * (the scanner's own normalization, which follows harbor-scanner-trivy).
 */
export function harborReportFromTrivy(trivy: TrivyReport, artifact: { repository: string; digest: string }): HarborVulnerabilityReport {
  return normalizeTrivyReport({
    trivy,
    artifact: { repository: artifact.repository, digest: artifact.digest, mimeType: 'application/vnd.oci.image.manifest.v1+json' },
    scanner: { name: 'Trivy', vendor: 'Aqua Security', version: 'v0.50.0' },
    generatedAt: '2026-01-02T03:04:08.000Z',
  });
}
