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

export function admissionMetrics(registry: Registry, onCollect?: () => void): AdmissionMetrics {
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
        ...(onCollect ? { collect: onCollect } : {}),
      }),
  };
}

/**
 * Records into the metrics with the label children cached: resolving label values is the costly
 * part of prom-client, and the hot path sees the same few combinations again and again.
 */
export class AdmissionRecorder {
  readonly #metrics: AdmissionMetrics;
  readonly #requests = new Map<string, { inc(): void }>();
  readonly #durations = new Map<string, { observe(value: number): void }>();
  /** policy → result → count, published into the counter when the registry is scraped. */
  readonly #results = new Map<string, Map<string, number>>();
  #published = new Map<string, number>();

  readonly #eager: boolean;

  /** `eager`: publish after every request (when no scrape hook could be installed). */
  constructor(metrics: AdmissionMetrics, eager = false) {
    this.#metrics = metrics;
    this.#eager = eager;
  }

  /**
   * Moves the counts gathered since the last scrape into the prom-client counter. Counting in a
   * plain map on the hot path and publishing per scrape is much cheaper than one labelled
   * increment per result (a request has one result per policy, rule and image).
   */
  publish(): void {
    for (const [policy, byResult] of this.#results) {
      for (const [result, count] of byResult) {
        const key = `${policy}\u0000${result}`;
        const delta = count - (this.#published.get(key) ?? 0);
        if (delta > 0) this.#metrics.policyResults.inc({ policy, result }, delta);
        this.#published.set(key, count);
      }
    }
  }

  /** One answered (or rejected, `invalid`) request; `seconds` only for answered ones. */
  request(webhook: string, decision: string, seconds?: number): void {
    const key = `${webhook} ${decision}`;
    let counter = this.#requests.get(key);
    if (!counter) {
      counter = this.#metrics.requests.labels({ webhook, decision });
      this.#requests.set(key, counter);
    }
    counter.inc();
    if (seconds === undefined) return;
    let histogram = this.#durations.get(key);
    if (!histogram) {
      histogram = this.#metrics.duration.labels({ webhook, decision });
      this.#durations.set(key, histogram);
    }
    histogram.observe(seconds);
  }

  /** The results of one request, counted by policy and result (published by publish()). */
  results(results: readonly PolicyResult[]): void {
    for (const result of results) {
      let byResult = this.#results.get(result.policy);
      if (!byResult) {
        byResult = new Map();
        this.#results.set(result.policy, byResult);
      }
      byResult.set(result.status, (byResult.get(result.status) ?? 0) + 1);
    }
    if (this.#eager) this.publish();
  }
}

/** The admission metrics of `registry` and a recorder that publishes policy results on each scrape. */
export function createAdmissionRecorder(registry: Registry): AdmissionRecorder {
  const holder: { recorder?: AdmissionRecorder } = {};
  const hooked = registry.getSingleMetric('portcullis_policy_results_total') === undefined;
  const metrics = admissionMetrics(registry, () => holder.recorder?.publish());
  holder.recorder = new AdmissionRecorder(metrics, !hooked);
  return holder.recorder;
}
