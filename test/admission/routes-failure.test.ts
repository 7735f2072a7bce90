/**
 * A bug in a pipeline must still produce an AdmissionReview answer: the validating webhook fails
 * closed (deny, naming the internal error), the mutating one changes nothing; also when the
 * failure comes after the pipeline waited (out of a promise).
 */
import { fetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../src/admission/decision.js';
import { admissionStats } from '../../src/admission/metrics.js';
import { admissionRoutes } from '../../src/admission/routes.js';
import type { PipelineDeps } from '../../src/admission/validate.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { emptyPolicySet } from '../../src/policy/compile.js';
import { admissionReview, workload } from '../helpers/admission.js';
import { testTls, trustingAgent } from '../helpers/tls.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(pipeline: Partial<PipelineDeps>) {
  const tls = testTls();
  const recorded: DecisionRecord[] = [];
  const app = buildServer({ logger: silentLogger(), tls: tls.serving });
  await app.register(
    admissionRoutes({
      pipeline: { policies: { current: () => emptyPolicySet() }, verdicts: undefined, kube: undefined, excluded: () => false, now: () => new Date(), logger: silentLogger(), ...pipeline },
      webhooks: { validate: { path: '/validate', timeoutSeconds: 2, file: 'test' }, mutate: { path: '/mutate', timeoutSeconds: 2, file: 'test' } },
      deadlineMarginMs: 500,
      metrics: admissionStats(createMetricsRegistry({ defaultMetrics: false })),
      decisions: { record: (record) => void recorded.push(record) },
    }),
  );
  servers.push(app);
  const { port } = await listen(app, '127.0.0.1', 0);
  const dispatcher = trustingAgent(tls.ca.cert);
  const review = async (webhook: 'validate' | 'mutate') => {
    const response = await fetch(`https://127.0.0.1:${port}/${webhook}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(admissionReview({ object: workload('Deployment', { name: 'web', namespace: 'team-a', containers: ['registry.example.com/team/app:1'] }) })),
      dispatcher,
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { response: { allowed: boolean; status?: { code: number; message: string } } }).response;
  };
  return { review, recorded };
}

describe('a failing admission pipeline', () => {
  const broken = () => {
    throw new Error('policy store exploded');
  };

  it('denies on validate and allows on mutate when the pipeline throws at once', async () => {
    const { review, recorded } = await start({ policies: { current: broken } });
    const validate = await review('validate');
    expect(validate.allowed).toBe(false);
    expect(validate.status).toEqual({ code: 403, message: '[portcullis/internal] policy store exploded', reason: 'Forbidden' });
    expect((await review('mutate')).allowed).toBe(true);
    // Nothing was evaluated: no subject, so no decision record.
    expect(recorded).toEqual([]);
  });

  it('denies on validate when the pipeline fails after waiting', async () => {
    // Namespace labels must be fetched (nothing cached): the failure comes out of a promise.
    const kube = {
      namespaceLabels: async () => ({}),
      ensureSecret: async () => 'existed' as const,
    };
    const { review } = await start({ kube, policies: { current: () => emptyPolicySet() }, excluded: () => false, memo: { key: broken } as unknown as PipelineDeps['memo'], verdicts: {} as PipelineDeps['verdicts'] });
    const validate = await review('validate');
    expect(validate.allowed).toBe(false);
    expect(validate.status?.message).toBe('[portcullis/internal] policy store exploded');
  });
});
