import type { Metric, MetricValue, MetricValueWithName, Registry } from 'prom-client';
import type { PolicyResult } from '../policy/types.js';

/** Upper bounds of the duration histogram, seconds. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const REQUESTS = 'portcullis_admission_requests_total';
const DURATION = 'portcullis_admission_duration_seconds';
const RESULTS = 'portcullis_policy_results_total';

/** One counter of policy results (a policy × result pair). */
interface Count {
  value: number;
}

/** The counts of one webhook × decision pair. */
interface Slot {
  requests: number;
  /** Observations per bucket, not cumulative; the last element counts those above every bound. */
  buckets: Float64Array;
  sum: number;
  observed: number;
}

/**
 * Everything the admission metrics count, in plain maps and arrays. The hot path only increments
 * numbers here; prom-client reads the figures when `/metrics` is scraped, through the three metric
 * views below. (prom-client's own Counter and Histogram hash the label values on every increment,
 * which was a measurable part of the validate path.)
 */
export class AdmissionStats {
  /** webhook → decision → counts. */
  readonly #slots = new Map<string, Map<string, Slot>>();
  /** policy → result → count. */
  readonly #results = new Map<string, Map<string, Count>>();
  /** Per results array seen, the counts it adds to. */
  #tallies = new WeakMap<readonly PolicyResult[], [Count, number][]>();

  /** One answered (or rejected, `invalid`) request; `seconds` only for answered ones. */
  request(webhook: string, decision: string, seconds?: number): void {
    const slot = this.#slot(webhook, decision);
    slot.requests += 1;
    if (seconds === undefined) return;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket += 1;
    slot.buckets[bucket]! += 1;
    slot.sum += seconds;
    slot.observed += 1;
  }

  /**
   * The results of one request, counted by policy and result. A remembered evaluation hands the
   * same results array to every request it answers, so its tally (which counter, how many) is
   * worked out once per array and then only added.
   */
  results(results: readonly PolicyResult[]): void {
    if (results.length === 0) return;
    let tally = this.#tallies.get(results);
    if (tally === undefined) {
      const counts = new Map<Count, number>();
      for (const result of results) {
        const count = this.#count(result.policy, result.status);
        counts.set(count, (counts.get(count) ?? 0) + 1);
      }
      tally = [...counts];
      this.#tallies.set(results, tally);
    }
    for (const [count, times] of tally) count.value += times;
  }

  reset(): void {
    this.#slots.clear();
    this.#results.clear();
    this.#tallies = new WeakMap();
  }

  requestValues(): MetricValue<'webhook' | 'decision'>[] {
    const values: MetricValue<'webhook' | 'decision'>[] = [];
    for (const [webhook, byDecision] of this.#slots) {
      for (const [decision, slot] of byDecision) values.push({ labels: { webhook, decision }, value: slot.requests });
    }
    return values;
  }

  durationValues(): MetricValueWithName<'webhook' | 'decision' | 'le'>[] {
    const values: MetricValueWithName<'webhook' | 'decision' | 'le'>[] = [];
    for (const [webhook, byDecision] of this.#slots) {
      for (const [decision, slot] of byDecision) {
        if (slot.observed === 0) continue;
        let cumulative = 0;
        DURATION_BUCKETS.forEach((bound, index) => {
          cumulative += slot.buckets[index]!;
          values.push({ metricName: `${DURATION}_bucket`, labels: { le: bound, webhook, decision }, value: cumulative });
        });
        values.push({ metricName: `${DURATION}_bucket`, labels: { le: '+Inf', webhook, decision }, value: slot.observed });
        values.push({ metricName: `${DURATION}_sum`, labels: { webhook, decision }, value: slot.sum });
        values.push({ metricName: `${DURATION}_count`, labels: { webhook, decision }, value: slot.observed });
      }
    }
    return values;
  }

  resultValues(): MetricValue<'policy' | 'result'>[] {
    const values: MetricValue<'policy' | 'result'>[] = [];
    for (const [policy, byResult] of this.#results) {
      for (const [result, count] of byResult) values.push({ labels: { policy, result }, value: count.value });
    }
    return values;
  }

  #count(policy: string, result: string): Count {
    return cell(this.#results, policy, result, () => ({ value: 0 }));
  }

  #slot(webhook: string, decision: string): Slot {
    return cell(this.#slots, webhook, decision, () => ({ requests: 0, buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, observed: 0 }));
  }
}

/** The value at `outer[first][second]`, made by `create` on first use. */
function cell<V>(outer: Map<string, Map<string, V>>, first: string, second: string, create: () => V): V {
  let inner = outer.get(first);
  if (!inner) {
    inner = new Map();
    outer.set(first, inner);
  }
  let value = inner.get(second);
  if (value === undefined) {
    value = create();
    inner.set(second, value);
  }
  return value;
}

/**
 * A read-only metric as prom-client's registry consumes it (name, help, type, `get()`): the
 * registry formats whatever `get()` returns, so the figures can live in AdmissionStats.
 */
class StatsView {
  readonly aggregator = 'sum' as const;

  constructor(
    readonly stats: AdmissionStats,
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    readonly values: () => MetricValue<string>[],
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: MetricValue<string>[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }

  reset(): void {
    this.stats.reset();
  }
}

/**
 * The admission metrics of `registry` (docs/admission.md lists them), registered on first use; a
 * second admission instance on the same registry counts into the same figures.
 */
export function admissionStats(registry: Registry): AdmissionStats {
  const known = registry.getSingleMetric(REQUESTS) as unknown;
  if (known instanceof StatsView) return known.stats;
  const stats = new AdmissionStats();
  const views = [
    new StatsView(stats, REQUESTS, 'AdmissionReview requests answered, by webhook (validate, mutate) and decision (allow, deny, invalid).', 'counter', () =>
      stats.requestValues(),
    ),
    new StatsView(stats, DURATION, 'Time from receiving an AdmissionReview to answering it, by webhook and decision.', 'histogram', () => stats.durationValues()),
    new StatsView(stats, RESULTS, 'Policy rule outcomes in admission, by policy and result (pass, fail, warn, skip, error).', 'counter', () =>
      stats.resultValues(),
    ),
  ];
  // The registry's type names only its own metric classes; it calls nothing but name, help,
  // type, get() and reset() on what it holds.
  for (const view of views) registry.registerMetric(view as unknown as Metric);
  return stats;
}
