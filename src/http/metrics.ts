import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per process, created in src/main.ts (or per test) and handed to every
 * subsystem that defines metrics. Metric names start with `portcullis_`.
 */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'portcullis_process_' });
  return registry;
}

export type { Registry } from 'prom-client';
