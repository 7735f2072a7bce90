import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../http/metrics.js';
import type { PolicyResult } from '../policy/types.js';
import { admissionStats } from './metrics.js';

function result(policy: string, status: PolicyResult['status']): PolicyResult {
  return { policy, rule: 'vulnerabilities', status, action: 'deny', message: '' };
}

function line(text: string, prefix: string): number | undefined {
  const found = text.split('\n').find((entry) => entry.startsWith(`${prefix} `));
  return found === undefined ? undefined : Number(found.slice(prefix.length + 1));
}

describe('admission metrics', () => {
  it('exposes request counts, a cumulative duration histogram and policy results in Prometheus text', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const stats = admissionStats(registry);
    stats.request('validate', 'allow', 0.0004);
    stats.request('validate', 'allow', 0.003);
    stats.request('validate', 'allow', 20);
    stats.request('validate', 'invalid');
    stats.results([result('deny-critical', 'fail'), result('deny-critical', 'fail'), result('warn-high', 'pass')]);

    const text = await registry.metrics();
    expect(text).toContain('# TYPE portcullis_admission_requests_total counter');
    expect(text).toContain('# TYPE portcullis_admission_duration_seconds histogram');
    expect(line(text, 'portcullis_admission_requests_total{webhook="validate",decision="allow"}')).toBe(3);
    expect(line(text, 'portcullis_admission_requests_total{webhook="validate",decision="invalid"}')).toBe(1);
    const bucket = (le: string) => line(text, `portcullis_admission_duration_seconds_bucket{le="${le}",webhook="validate",decision="allow"}`);
    expect([bucket('0.001'), bucket('0.0025'), bucket('0.005'), bucket('10'), bucket('+Inf')]).toEqual([1, 1, 2, 2, 3]);
    expect(line(text, 'portcullis_admission_duration_seconds_count{webhook="validate",decision="allow"}')).toBe(3);
    expect(line(text, 'portcullis_admission_duration_seconds_sum{webhook="validate",decision="allow"}')).toBeCloseTo(20.0034, 6);
    // A rejected request has no duration: no histogram series for it.
    expect(text).not.toMatch(/duration_seconds_count\{webhook="validate",decision="invalid"\}/);
    expect(line(text, 'portcullis_policy_results_total{policy="deny-critical",result="fail"}')).toBe(2);
    expect(line(text, 'portcullis_policy_results_total{policy="warn-high",result="pass"}')).toBe(1);
  });

  it('counts a second admission instance on the same registry into the same figures, and resets with the registry', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    admissionStats(registry).request('mutate', 'allow', 0.01);
    admissionStats(registry).request('mutate', 'allow', 0.01);
    expect(line(await registry.metrics(), 'portcullis_admission_requests_total{webhook="mutate",decision="allow"}')).toBe(2);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('webhook="mutate"');
  });

  it('serves the figures as JSON too', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    admissionStats(registry).request('validate', 'deny', 0.002);
    const json = await registry.getMetricsAsJSON();
    const requests = json.find((metric) => metric.name === 'portcullis_admission_requests_total');
    expect(requests?.values).toEqual([{ labels: { webhook: 'validate', decision: 'deny' }, value: 1 }]);
  });

  it('counts the same results array (a remembered evaluation) again on every request, also after a reset', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const stats = admissionStats(registry);
    const shared = [result('deny-critical', 'fail'), result('deny-critical', 'pass'), result('deny-critical', 'fail')];
    stats.results(shared);
    stats.results(shared);
    stats.results([result('deny-critical', 'fail')]);
    let text = await registry.metrics();
    expect(line(text, 'portcullis_policy_results_total{policy="deny-critical",result="fail"}')).toBe(5);
    expect(line(text, 'portcullis_policy_results_total{policy="deny-critical",result="pass"}')).toBe(2);
    registry.resetMetrics();
    stats.results(shared);
    text = await registry.metrics();
    expect(line(text, 'portcullis_policy_results_total{policy="deny-critical",result="fail"}')).toBe(2);
    expect(line(text, 'portcullis_policy_results_total{policy="deny-critical",result="pass"}')).toBe(1);
  });
});
