import { Counter, Histogram, type Registry } from 'prom-client';
import type { PolicyResult } from '../policy/types.js';

/** The admission metrics (docs/admission.md lists them). Registered once per registry. */
export interface AdmissionMetrics {
  /** `webhook`: validate | mutate; `decision`: allow | deny | invalid (a 4xx before any decision). */
  requests: Counter<'webhook' | 'decision'>;
  duration: Histogram<'webhook' | 'decision'>;
  /** One increment per policy result: `result` is pass | fail | warn | skip | error. */
  policyResults: Counter<'policy' | 'result'>;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

export function admissionMetrics(registry: Registry): AdmissionMetrics {
  return {
    requests:
      existing<Counter<'webhook' | 'decision'>>(registry, 'portcullis_admission_requests_total') ??
      new Counter({
        name: 'portcullis_admission_requests_total',
        help: 'AdmissionReview requests answered, by webhook (validate, mutate) and decision (allow, deny, invalid).',
        labelNames: ['webhook', 'decision'],
        registers: [registry],
      }),
    duration:
      existing<Histogram<'webhook' | 'decision'>>(registry, 'portcullis_admission_duration_seconds') ??
      new Histogram({
        name: 'portcullis_admission_duration_seconds',
        help: 'Time from receiving an AdmissionReview to answering it, by webhook and decision.',
        labelNames: ['webhook', 'decision'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
    policyResults:
      existing<Counter<'policy' | 'result'>>(registry, 'portcullis_policy_results_total') ??
      new Counter({
        name: 'portcullis_policy_results_total',
        help: 'Policy rule outcomes in admission, by policy and result (pass, fail, warn, skip, error).',
        labelNames: ['policy', 'result'],
        registers: [registry],
      }),
  };
}

/** Counts the results of one request. */
export function countResults(metrics: AdmissionMetrics, results: readonly PolicyResult[]): void {
  for (const result of results) metrics.policyResults.inc({ policy: result.policy, result: result.status });
}
