import { relative } from 'node:path';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
// Types only: the suite (and with it the Kubernetes client) loads when `up` runs, not whenever the
// CLI starts for another command.
import type { Suite } from '../main.js';
import { ROLES, type Role } from '../main-support.js';
import type { ReadinessReport } from '../http/readiness.js';
import { EXIT, UsageError, listOption, stringOption, type Command } from './command.js';
import { nextSignal } from './signals.js';
import { packageVersion } from './version.js';

const WHAT: Record<Role, string> = {
  webhook: 'admission webhooks: POST /validate, POST /mutate',
  registry: 'OCI registry /v2/, Harbor API /api/v2.0/',
  scanner: 'Trivy orchestrator, scanner-adapter API /api/v1/',
};

function readinessLine(report: ReadinessReport): string {
  if (report.ready) return 'ready';
  const reasons = Object.entries(report.checks)
    .filter(([, check]) => !check.ok)
    .map(([name, check]) => `${name}: ${check.reason ?? 'failing'}`);
  return `not ready (${reasons.join('; ')})`;
}

/** The text printed once everything listens: every URL, the CA, the password, the next steps. */
export async function banner(suite: Suite, cwd: string): Promise<string> {
  const show = (path: string) => (path.startsWith(cwd) ? `./${relative(cwd, path)}` : path);
  const lines = [`Portcullis ${packageVersion()} is up.`, ''];
  for (const role of suite.roles) {
    const endpoint = suite.endpoints[role];
    if (!endpoint) continue;
    lines.push(`  ${role.padEnd(9)} ${endpoint.url.padEnd(28)} ${WHAT[role]}`);
    lines.push(`  ${''.padEnd(9)} ${readinessLine(await suite.readiness(role))}`);
  }
  const { admin } = suite;
  lines.push('');
  lines.push(`  CA        ${show(suite.caFile)}   (trust directory for skopeo/docker: ${show(suite.trustDir)})`);
  if (admin?.generatedPassword) {
    lines.push(`  admin     user "${admin.username}", password ${admin.generatedPassword}`);
    lines.push('            (shown this once and stored only as a hash: keep it now)');
  } else if (admin?.created) {
    lines.push(`  admin     user "${admin.username}", password from the configuration (PORTCULLIS_ADMIN_PASSWORD), stored only as a hash`);
  } else if (admin) {
    lines.push(`  admin     user "${admin.username}", password as set on the first start (stored only as a hash; lost: portcullis admin reset-password)`);
  }
  lines.push(`  policies  ${show(suite.policiesDir)}`);
  lines.push(`  webhooks  ${show(suite.webhooksDir)}`);
  const kube = suite.kube;
  lines.push(
    `  cluster   ${kube.mode === 'kubeconfig' ? `kubeconfig ${kube.file}` : kube.mode === 'in-cluster' ? 'in-cluster service account' : `none (${kube.reason}); everything else works without one`}`,
  );
  const password = '$PORTCULLIS_ADMIN_PASSWORD';
  const steps: string[][] = [];
  const { registry, webhook } = suite.endpoints;
  if (registry && admin) {
    steps.push(['Put the admin password in the environment for the commands below:', "   export PORTCULLIS_ADMIN_PASSWORD='<the admin password>'"]);
  }
  if (registry) {
    steps.push([
      'Create a project and push an image to it (pushes are scanned):',
      `   npx portcullis project create demo --url ${registry.url} --ca ${show(suite.caFile)} --password "${password}"`,
      `   skopeo copy --dest-cert-dir ${show(suite.trustDir)} --dest-creds "admin:${password}" \\`,
      `     docker-archive:image.tar docker://${registry.url.replace(/^https?:\/\//, '')}/demo/app:1.0`,
    ]);
  }
  if (webhook) {
    steps.push([
      'Render the webhook configurations for a cluster that reaches this machine:',
      `   npx portcullis webhooks render --ca ${show(suite.caFile)} --url ${webhook.url}`,
    ]);
  }
  steps.push(['Ask for a decision without a cluster (the webhook\'s pipeline, offline):', '   npx portcullis review -f deployment.yaml --report IMAGE=trivy-report.json']);
  if (registry && admin) {
    steps.push([
      'See what was decided (the audit API is served by the registry):',
      `   npx portcullis audit query --url ${registry.url} --ca ${show(suite.caFile)} --username admin --password "${password}"`,
    ]);
  }
  lines.push('', 'Next steps:');
  steps.forEach(([first, ...rest], index) => lines.push(`  ${index + 1}. ${first}`, ...rest.map((line) => `  ${line}`)));
  lines.push('', 'Press Ctrl-C to stop (in-flight requests finish, the audit buffer is flushed).', '');
  return lines.join('\n');
}

export const upCommand: Command = {
  name: 'up',
  summary: 'Run the webhook, the registry and the scanner in one process (a laptop or a demo)',
  usage: `Usage: portcullis up [--data-dir DIR] [--webhook-listen HOST:PORT] [--registry-listen HOST:PORT]
                    [--scanner-listen HOST:PORT] [--config FILE] [--role ROLE]...

Runs every role in this process with an SQLite database and blob storage in the data directory.
On first start it issues a CA and a serving certificate (localhost, 127.0.0.1, the Service names)
and generates the registry's admin password, printed once and stored only as a hash (set
PORTCULLIS_ADMIN_PASSWORD to choose it instead). Policies are read from policies/.
Trivy is used when it is on PATH; otherwise the scanner reports "not ready" with the reason.
Kubernetes is used when KUBECONFIG is set or the process runs in a cluster; everything else works
without one. SIGINT or SIGTERM stops it gracefully: servers stop accepting, in-flight admission
requests finish, the audit buffer is flushed and the database closed.

Options:
  --data-dir DIR              Embedded state: database, blobs, certificates, keys (default ./.portcullis)
  --webhook-listen HOST:PORT  Admission HTTPS server (default 127.0.0.1:8443; port 0 picks a free port)
  --registry-listen HOST:PORT Registry HTTPS server (default 127.0.0.1:5000)
  --scanner-listen HOST:PORT  Scanner HTTPS server (default 127.0.0.1:8080)
  --role ROLE                 Run only this role (webhook, registry or scanner); repeatable. Default: all
                              three. A cluster runs one role per Deployment (manifests/).
  --config FILE               YAML configuration (default: PORTCULLIS_CONFIG, else none); flags win over it
                              and over PORTCULLIS_* variables (docs/configuration.md)

Exit codes:
  0  stopped cleanly after SIGINT/SIGTERM
  2  bad usage, invalid configuration, or a start failure (port in use, unreadable data directory)

Example:
  portcullis up --data-dir /tmp/pc --registry-listen 127.0.0.1:5001
`,
  options: {
    'data-dir': { type: 'string' },
    'webhook-listen': { type: 'string' },
    'registry-listen': { type: 'string' },
    'scanner-listen': { type: 'string' },
    config: { type: 'string' },
    role: { type: 'string', multiple: true },
  },
  positionals: false,
  async run({ values, io }) {
    const overrides: Record<string, unknown> = {};
    const dataDir = stringOption(values, 'data-dir');
    if (dataDir) overrides.dataDir = dataDir;
    const listenFlags: [string, string][] = [
      ['webhook-listen', 'webhook'],
      ['registry-listen', 'registry'],
      ['scanner-listen', 'scanner'],
    ];
    for (const [flag, section] of listenFlags) {
      const value = stringOption(values, flag);
      if (value) overrides[section] = { listen: value };
    }
    const roles = listOption(values, 'role');
    const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
    if (unknown.length > 0) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got ${unknown.join(', ')}`);
    const config = loadConfig({ file: stringOption(values, 'config'), env: io.env, overrides });
    // Logs go to stderr so that the banner on stdout stays readable (and parseable by tests).
    const logger = createLogger({ level: config.log.level }, process.stderr);
    // Listen for signals before anything starts: a Ctrl-C during start-up (or right after the
    // banner) then still closes what was started instead of killing the process.
    const stopRequested = nextSignal();
    const { startSuite } = await import('../main.js');
    let generated: string | undefined;
    let suite: Suite;
    try {
      suite = await startSuite({
        config,
        logger,
        env: io.env,
        cwd: io.cwd,
        roles: roles.length > 0 ? ROLES.filter((role) => roles.includes(role)) : ROLES,
        onAdminPasswordGenerated: (password) => {
          generated = password;
        },
      });
    } catch (error) {
      // The admin exists now, with a password that only this process knows: show it before failing.
      if (generated) io.stdout(`admin password (shown once; the start failed after the admin was created): ${generated}\n`);
      throw error;
    }
    io.stdout(await banner(suite, io.cwd));
    const signal = await stopRequested;
    logger.info({ signal }, 'shutting down');
    // A safety net that does not itself keep the process alive: if some handle stays open after
    // a clean close, exit anyway instead of hanging the terminal.
    setTimeout(() => {
      logger.warn('handles still open after shutdown; exiting');
      process.exit(EXIT.ok);
    }, 10_000).unref();
    await suite.close();
    logger.info('stopped');
    return EXIT.ok;
  },
};
