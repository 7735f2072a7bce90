import type { FastifyPluginAsync } from 'fastify';
import { apiPrincipal, type IdentityApiContext } from '../auth/api-support.js';

/** One component of `/health` (Harbor's `ComponentHealthStatus`). */
export interface ComponentHealth {
  name: string;
  status: 'healthy' | 'unhealthy';
  error?: string;
}

export interface SystemInfoDeps extends IdentityApiContext {
  /** The address clients use, e.g. `https://registry.example.com`. */
  externalUrl: () => string;
  version: string;
  now: () => number;
  /** Checks of the components (database, storage); each resolves, never rejects. */
  health: () => Promise<ComponentHealth[]>;
}

/** `/systeminfo`, `/health` and `/ping`. */
export function systemInfoRoutes(deps: SystemInfoDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/systeminfo', async (request) => {
      const principal = await apiPrincipal(deps, request);
      const base = {
        auth_mode: 'db_auth',
        primary_auth_mode: false,
        self_registration: false,
        harbor_version: deps.version,
      };
      // Harbor leaves the deployment details out for anonymous callers.
      if (principal.kind === 'anonymous') return base;
      const url = deps.externalUrl();
      return {
        ...base,
        current_time: new Date(deps.now()).toISOString(),
        external_url: url,
        registry_url: url.replace(/^https?:\/\//, ''),
        project_creation_restriction: 'everyone',
        has_ca_root: false,
        read_only: false,
        notification_enable: false,
        registry_storage_provider_name: 'filesystem',
      };
    });

    app.get('/health', async () => {
      const components = [{ name: 'core', status: 'healthy' as const }, ...(await deps.health())];
      return { status: components.every((component) => component.status === 'healthy') ? 'healthy' : 'unhealthy', components };
    });

    app.get('/ping', async (_request, reply) => reply.header('content-type', 'text/plain; charset=utf-8').send('Pong'));
  };
}
