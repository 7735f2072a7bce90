import type { FastifyPluginAsync } from 'fastify';
import type { ScanPort } from '../registry/scan-port.js';
import { createBuiltinVerdictSource, type DigestResolver } from '../verdicts/builtin-source.js';
import type { VerdictSource } from '../verdicts/source.js';
import { adapterRoutes } from './routes.js';
import { Scanner, type ScannerDeps, type ScannerSystemInfo } from './service.js';

export interface CreateScannerDeps extends ScannerDeps {
  /** Tag → digest from the registry's manifests (main wires it to the registry metadata). */
  digestResolver?: DigestResolver;
  /** Registry hosts the verdict source answers for; the host of `registryUrl` by default. */
  registryHosts?: readonly string[];
}

export interface ScannerSubsystem {
  /** For the registry: scan_overview, /additions/vulnerabilities, scan requests. */
  scanPort: ScanPort;
  /** For the webhook in the same process (the `builtin` source). */
  verdictSource: VerdictSource;
  /** Mount on the scanner role's server: the Harbor scanner-adapter API v1.1 and the verdict endpoint. */
  adapterRoutes: FastifyPluginAsync;
  /** For `/api/v2.0/systeminfo` and the adapter metadata. */
  systemInfo(): Promise<ScannerSystemInfo>;
  /** Harbor's `/api/v2.0/health` component for the scanner (`trivy`, unhealthy with the reason when not ready). */
  health(): Promise<{ name: string; status: 'healthy' | 'unhealthy'; error?: string }[]>;
  /** Probes Trivy, reclaims crashed jobs, subscribes to pushes, starts the workers. */
  start(): Promise<void>;
  /** Stops the workers (running scans go back to the queue) and the probes. */
  close(): Promise<void>;
  /** The service itself, for tests and tools. */
  scanner: Scanner;
}

const noResolver: DigestResolver = {
  async resolve() {
    throw new Error('no digest resolver configured: tag references cannot be resolved (wire the registry metadata in src/main.ts)');
  },
};

/**
 * The scanner role's factory. The database must already carry `scannerMigrations`
 * (src/scanner/migrations.ts). Nothing runs until `start()`.
 */
export function createScanner(deps: CreateScannerDeps): ScannerSubsystem {
  const scanner = new Scanner(deps);
  const verdictSource = createBuiltinVerdictSource({
    verdicts: { verdict: (request) => scanner.verdict(request) },
    resolver: deps.digestResolver ?? noResolver,
    registryHosts: deps.registryHosts ?? [new URL(deps.registryUrl).host],
  });
  const routes: FastifyPluginAsync = async (app) => {
    await app.register(adapterRoutes, { scanner, ...(deps.config.apiToken ? { apiToken: deps.config.apiToken } : {}) });
  };
  return {
    scanPort: scanner,
    verdictSource,
    adapterRoutes: routes,
    systemInfo: () => scanner.systemInfo(),
    async health() {
      const state = scanner.status.state;
      return [state.ready ? { name: 'trivy', status: 'healthy' } : { name: 'trivy', status: 'unhealthy', error: `not ready: ${state.reason}` }];
    },
    start: () => scanner.start(),
    close: () => scanner.close(),
    scanner,
  };
}
