import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { testTls } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { webhookConfigurationProblems } from './webhook-schema.js';

/**
 * The install surface a platform team applies: every manifest is a well-formed object, the
 * webhook configurations are valid admissionregistration.k8s.io/v1 (Kubernetes' own OpenAPI, made
 * strict), the kustomization is complete, and the pods are locked down.
 */
type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const manifestsDir = join(repoRoot, 'manifests');
const webhooksDir = join(repoRoot, 'webhooks');
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
    return document.toJS() as unknown;
  });
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml')
    .map((name) => join(dir, name));
}

const manifests: { file: string; object: Manifest }[] = [...yamlFiles(manifestsDir), ...yamlFiles(webhooksDir)].flatMap((file) =>
  readDocuments(file)
    .filter((object) => object !== null)
    .map((object) => ({ file: file.slice(repoRoot.length), object: object as Manifest })),
);
const byKind = (kind: string) => manifests.filter((entry) => entry.object.kind === kind);

function basicProblems(object: unknown): string[] {
  if (!isRecord(object)) return ['not a mapping'];
  const problems: string[] = [];
  if (typeof object.apiVersion !== 'string' || object.apiVersion === '') problems.push('apiVersion is missing');
  if (typeof object.kind !== 'string' || object.kind === '') problems.push('kind is missing');
  const metadata = object.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(metadata.name)) problems.push('metadata.name is missing or not a DNS name');
  if (typeof object.kind === 'string' && !CLUSTER_SCOPED.has(object.kind) && !(isRecord(metadata) && typeof metadata.namespace === 'string')) problems.push('metadata.namespace is missing on a namespaced kind');
  return problems;
}

/** Fields each kind must carry beyond the basics (what the apiserver would refuse without). */
const REQUIRED: Record<string, string[][]> = {
  ServiceAccount: [],
  Namespace: [],
  ClusterRole: [['rules']],
  Role: [['rules']],
  ClusterRoleBinding: [['roleRef', 'name'], ['subjects']],
  RoleBinding: [['roleRef', 'name'], ['subjects']],
  Service: [['spec', 'selector'], ['spec', 'ports']],
  PersistentVolumeClaim: [['spec', 'accessModes'], ['spec', 'resources', 'requests', 'storage']],
  Deployment: [['spec', 'selector', 'matchLabels'], ['spec', 'template', 'metadata', 'labels'], ['spec', 'template', 'spec', 'containers']],
  PodDisruptionBudget: [['spec', 'selector']],
  ValidatingWebhookConfiguration: [['webhooks']],
  MutatingWebhookConfiguration: [['webhooks']],
};

function at(object: unknown, path: string[]): unknown {
  return path.reduce<unknown>((node, key) => (isRecord(node) ? node[key] : undefined), object);
}

describe('manifests: every object is well-formed', () => {
  it('finds the objects a cluster install needs', () => {
    const kinds = new Set(manifests.map((entry) => entry.object.kind));
    for (const kind of Object.keys(REQUIRED)) expect(kinds, kind).toContain(kind);
  });

  it.each(manifests.map((entry) => [`${entry.file} ${entry.object.kind}/${entry.object.metadata?.name}`, entry.object] as const))('%s has apiVersion, kind, metadata and its required fields', (_name, object) => {
    const problems = basicProblems(object);
    const required = REQUIRED[object.kind];
    if (required === undefined) problems.push(`kind ${object.kind} is not covered by this test: add its required fields`);
    for (const path of required ?? []) if (at(object, path) === undefined) problems.push(`${path.join('.')} is missing`);
    expect(problems).toEqual([]);
  });

  it('has every Deployment selector match its pod template labels, and every Service select a Deployment', () => {
    for (const { object } of byKind('Deployment')) {
      const selector = at(object, ['spec', 'selector', 'matchLabels']) as Record<string, string>;
      const labels = at(object, ['spec', 'template', 'metadata', 'labels']) as Record<string, string>;
      expect(labels, object.metadata.name).toMatchObject(selector);
    }
    for (const { object } of byKind('Service')) {
      const selector = at(object, ['spec', 'selector']) as Record<string, string>;
      const targets = byKind('Deployment').filter(({ object: deployment }) => Object.entries(selector).every(([key, value]) => (at(deployment, ['spec', 'template', 'metadata', 'labels']) as Record<string, string>)[key] === value));
      expect(targets.length, object.metadata.name).toBe(1);
    }
  });
});

describe('manifests: kustomization', () => {
  const kustomization = readDocuments(join(manifestsDir, 'kustomization.yaml'))[0] as { resources: string[] };

  it.each(kustomization.resources.map((resource) => [resource]))('resource %s exists (a file, or a directory with its own kustomization)', (resource) => {
    const path = join(manifestsDir, resource);
    expect(existsSync(path), path).toBe(true);
    if (statSync(path).isDirectory()) expect(['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((name) => existsSync(join(path, name))), path).toBe(true);
  });

  it('lists every manifest file of manifests/', () => {
    const listed = new Set(kustomization.resources);
    for (const file of readdirSync(manifestsDir).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')) expect(listed, file).toContain(file);
  });

  it('generates the policies ConfigMap from every policy file in policies/', () => {
    const generator = readDocuments(join(repoRoot, 'policies/Kustomization'))[0] as { configMapGenerator: { name: string; files: string[] }[] };
    const policyFiles = readdirSync(join(repoRoot, 'policies')).filter((name) => /\.ya?ml$/.test(name) && !name.startsWith('.')).sort();
    expect(generator.configMapGenerator[0]?.name).toBe('portcullis-policies');
    expect([...(generator.configMapGenerator[0]?.files ?? [])].sort()).toEqual(policyFiles);
  });

  it('includes webhooks/ with both configurations', () => {
    const webhooks = readDocuments(join(webhooksDir, 'kustomization.yaml'))[0] as { resources: string[] };
    expect(webhooks.resources.sort()).toEqual(yamlFiles(webhooksDir).map((file) => file.slice(webhooksDir.length + 1)).sort());
  });

  const kubectl = (() => {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!kubectl)('builds with `kubectl kustomize manifests/` and the build passes the same checks', () => {
    const built = parseAllDocuments(execFileSync('kubectl', ['kustomize', manifestsDir], { encoding: 'utf8' })).map((document) => document.toJS() as Manifest);
    expect(built.length).toBeGreaterThanOrEqual(manifests.length + 1);
    for (const object of built) expect(basicProblems(object), `${object.kind}/${object.metadata.name}`).toEqual([]);
    const configMap = built.find((object) => object.kind === 'ConfigMap');
    expect(configMap?.metadata.name).toMatch(/^portcullis-policies-/);
    const webhookDeployment = built.find((object) => object.kind === 'Deployment' && object.metadata.name === 'portcullis-webhook');
    expect(JSON.stringify(webhookDeployment)).toContain(configMap?.metadata.name);
    for (const object of built.filter((o) => o.kind.endsWith('WebhookConfiguration'))) expect(webhookConfigurationProblems(object)).toEqual([]);
  });
});

describe('webhooks/: valid admissionregistration.k8s.io/v1 with the project rules', () => {
  const configurations = manifests.filter((entry) => entry.object.kind.endsWith('WebhookConfiguration'));
  const webhooks = configurations.flatMap(({ object }) => (object.webhooks as Record<string, unknown>[]).map((webhook) => ({ kind: object.kind, webhook })));

  it('has exactly one validating and one mutating configuration', () => {
    expect(configurations.map((entry) => entry.object.kind).sort()).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
  });

  it.each(configurations.map((entry) => [entry.file, entry.object] as const))('%s passes Kubernetes v1.28 OpenAPI (strict)', (_file, object) => {
    expect(webhookConfigurationProblems(object)).toEqual([]);
  });

  it.each([
    ['a misplaced reinvocationPolicy on a validating webhook', { reinvocationPolicy: 'IfNeeded' }, '/webhooks/0: must NOT have additional properties "reinvocationPolicy"'],
    ['a timeout above 30 seconds', { timeoutSeconds: 45 }, '/webhooks/0/timeoutSeconds: must be 1..30, got 45'],
    ['sideEffects Some (v1beta1 only)', { sideEffects: 'Some' }, '/webhooks/0/sideEffects: must be one of None, NoneOnDryRun, got "Some"'],
    ['both url and service', { clientConfig: { url: 'https://x/validate', service: { name: 's', namespace: 'n' } } }, '/webhooks/0/clientConfig: exactly one of url or service must be set'],
    ['a string timeout', { timeoutSeconds: '10' }, '/webhooks/0/timeoutSeconds: must be integer'],
  ])('the schema check catches %s', (_name, change, problem) => {
    const validating = configurations.find((entry) => entry.object.kind === 'ValidatingWebhookConfiguration')?.object as Manifest;
    const broken = { ...validating, webhooks: [{ ...(validating.webhooks as object[])[0], ...change }] };
    expect(webhookConfigurationProblems(broken)).toContain(problem);
  });

  it.each(webhooks.map(({ kind, webhook }) => [String(webhook.name), kind, webhook] as const))('%s never selects kube-system or the suite namespace and honours portcullis.io/ignore', (_name, _kind, webhook) => {
    const expressions = at(webhook, ['namespaceSelector', 'matchExpressions']) as { key: string; operator: string; values?: string[] }[];
    const byName = expressions.find((expression) => expression.key === 'kubernetes.io/metadata.name');
    expect(byName).toMatchObject({ operator: 'NotIn' });
    expect(byName?.values).toEqual(expect.arrayContaining(['kube-system', 'portcullis']));
    expect(expressions).toContainEqual({ key: 'portcullis.io/ignore', operator: 'DoesNotExist' });
  });

  it.each(webhooks.map(({ kind, webhook }) => [String(webhook.name), kind, webhook] as const))('%s covers pods and every pod controller on CREATE and UPDATE', (_name, _kind, webhook) => {
    const covered = new Set<string>();
    for (const rule of webhook.rules as { apiGroups: string[]; resources: string[]; operations: string[] }[]) {
      expect(rule.operations.sort()).toEqual(['CREATE', 'UPDATE']);
      for (const group of rule.apiGroups) for (const resource of rule.resources) covered.add(`${group}/${resource}`);
    }
    for (const needed of ['/pods', '/replicationcontrollers', 'apps/deployments', 'apps/replicasets', 'apps/statefulsets', 'apps/daemonsets', 'batch/jobs', 'batch/cronjobs']) expect(covered).toContain(needed);
  });

  it('chooses the failure policies on purpose: validating fails closed, mutating fails open and is re-invoked', () => {
    const validate = webhooks.find(({ kind }) => kind === 'ValidatingWebhookConfiguration')?.webhook;
    const mutate = webhooks.find(({ kind }) => kind === 'MutatingWebhookConfiguration')?.webhook;
    expect(validate).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'NoneOnDryRun', admissionReviewVersions: ['v1'], clientConfig: { service: { path: '/validate' } } });
    expect(mutate).toMatchObject({ failurePolicy: 'Ignore', reinvocationPolicy: 'IfNeeded', sideEffects: 'NoneOnDryRun', admissionReviewVersions: ['v1'], clientConfig: { service: { path: '/mutate' } } });
    // The justification sits next to each choice.
    for (const file of ['validating-webhook-configuration.yaml', 'mutating-webhook-configuration.yaml']) {
      expect(readFileSync(join(webhooksDir, file), 'utf8')).toMatch(/# Fail (closed|open):[^\n]*\n(\s*#[^\n]*\n)*\s*failurePolicy:/);
    }
  });

  const hasRender = COMMANDS.some((command) => command.name === 'webhooks render');
  it.skipIf(!hasRender)('`portcullis webhooks render --ca … --url https://127.0.0.1:PORT` prints valid v1 objects', async () => {
    const dir = tempDir();
    try {
      const caFile = join(dir.path, 'ca.crt');
      writeFileSync(caFile, testTls().ca.cert);
      const result = await runCli(['webhooks', 'render', '--ca', caFile, '--url', 'https://127.0.0.1:8443']);
      expect(result.code, result.stderr).toBe(0);
      const rendered = parseAllDocuments(result.stdout).map((document) => document.toJS() as Manifest).filter((object) => object !== null);
      expect(rendered.map((object) => object.kind).sort()).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
      for (const object of rendered) {
        expect(webhookConfigurationProblems(object), object.kind).toEqual([]);
        for (const webhook of object.webhooks as { clientConfig: { url?: string; caBundle?: string } }[]) {
          expect(webhook.clientConfig.url).toMatch(/^https:\/\/127\.0\.0\.1:8443\/(validate|mutate)$/);
          expect(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8')).toContain(testTls().ca.cert.trim());
        }
      }
    } finally {
      dir.remove();
    }
  });
});

describe('manifests: least privilege', () => {
  const deployments = byKind('Deployment');
  const containers = deployments.flatMap(({ object }) => (at(object, ['spec', 'template', 'spec', 'containers']) as Record<string, unknown>[]).map((container) => ({ deployment: object, container })));

  it.each(containers.map(({ deployment, container }) => [`${deployment.metadata.name}/${String(container.name)}`, deployment, container] as const))(
    '%s runs non-root with a read-only root filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault, probes and resources',
    (_name, deployment, container) => {
      const pod = at(deployment, ['spec', 'template', 'spec']) as Record<string, unknown>;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(at(pod, ['securityContext', 'runAsUser'])).toBeGreaterThan(0);
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(container.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', scheme: 'HTTPS' } });
      expect(container.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', scheme: 'HTTPS' } });
      expect(at(container, ['resources', 'requests', 'memory'])).toBeDefined();
      expect(at(container, ['resources', 'limits', 'memory'])).toBeDefined();
    },
  );

  it('runs the webhook with two replicas spread across nodes and a disruption budget', () => {
    const webhook = deployments.find(({ object }) => object.metadata.name === 'portcullis-webhook')?.object;
    expect(at(webhook, ['spec', 'replicas'])).toBe(2);
    expect(JSON.stringify(at(webhook, ['spec', 'template', 'spec', 'affinity', 'podAntiAffinity']))).toContain('kubernetes.io/hostname');
    expect(byKind('PodDisruptionBudget')[0]?.object).toMatchObject({ spec: { minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/component': 'webhook' } } } });
  });

  const argsOf = (deployment: Manifest) => (at(deployment, ['spec', 'template', 'spec', 'containers']) as { args?: string[] }[])[0]?.args ?? [];
  const rolesOf = (deployment: Manifest) => argsOf(deployment).flatMap((arg, index, args) => (args[index - 1] === '--role' ? [arg] : []));

  it('runs the scanner only in the same pod as the registry (robot credentials, push events and the scan port are in-process)', () => {
    const scanning = deployments.filter(({ object }) => rolesOf(object).includes('scanner'));
    expect(scanning.map(({ object }) => object.metadata.name)).toEqual(['portcullis-registry']);
    for (const { object } of scanning) expect(rolesOf(object).sort()).toEqual(['registry', 'scanner']);
    for (const { object } of deployments) expect(rolesOf(object).length, object.metadata.name).toBeGreaterThan(0);
  });

  it('keeps the embedded SQLite single-writer: the registry+scanner pod runs one replica, recreated, on one volume', () => {
    const combined = deployments.find(({ object }) => object.metadata.name === 'portcullis-registry')?.object;
    expect(at(combined, ['spec', 'replicas'])).toBe(1);
    expect(at(combined, ['spec', 'strategy', 'type'])).toBe('Recreate');
    const volumes = at(combined, ['spec', 'template', 'spec', 'volumes']) as { persistentVolumeClaim?: { claimName: string } }[];
    expect(volumes.flatMap((volume) => (volume.persistentVolumeClaim ? [volume.persistentVolumeClaim.claimName] : []))).toEqual(['portcullis-registry']);
    expect(byKind('PersistentVolumeClaim').map(({ object }) => object.metadata.name)).toEqual(['portcullis-registry']);
  });

  it('gives the scanner Trivy, a cache on the volume and an API token from a Secret, and only the webhook a Kubernetes token', () => {
    const combined = deployments.find(({ object }) => object.metadata.name === 'portcullis-registry')?.object;
    const container = (at(combined, ['spec', 'template', 'spec', 'containers']) as { image: string; env: { name: string; value?: string; valueFrom?: unknown }[] }[])[0];
    expect(container?.image).toBe('portcullis-scanner');
    const env = new Map((container?.env ?? []).map((variable) => [variable.name, variable]));
    expect(env.get('PORTCULLIS_SCANNER_CACHE_DIR')?.value).toMatch(/^\/data\//);
    expect(env.get('PORTCULLIS_SCANNER_LISTEN')?.value).toBe('0.0.0.0:8080');
    // A non-loopback scanner needs a token (loadConfig refuses to start without it); never a literal value.
    expect(env.get('PORTCULLIS_SCANNER_API_TOKEN')).toEqual({ name: 'PORTCULLIS_SCANNER_API_TOKEN', valueFrom: { secretKeyRef: { name: 'portcullis-scanner-token', key: 'token' } } });
    expect(byKind('Secret')).toEqual([]);
    for (const { object } of deployments) {
      const automount = at(object, ['spec', 'template', 'spec', 'automountServiceAccountToken']);
      if (object.metadata.name === 'portcullis-webhook') expect(automount).toBeUndefined();
      else expect(automount).toBe(false);
    }
  });

  it('points the portcullis-scanner Service at the scanner port of the registry+scanner pod', () => {
    const service = byKind('Service').find(({ object }) => object.metadata.name === 'portcullis-scanner')?.object;
    expect(at(service, ['spec', 'selector'])).toEqual(at(deployments.find(({ object }) => object.metadata.name === 'portcullis-registry')?.object, ['spec', 'selector', 'matchLabels']));
    expect(at(service, ['spec', 'ports'])).toEqual([{ name: 'https', port: 8080, targetPort: 'scanner' }]);
    const combined = deployments.find(({ object }) => object.metadata.name === 'portcullis-registry')?.object;
    const ports = (at(combined, ['spec', 'template', 'spec', 'containers']) as { ports: { name: string; containerPort: number }[] }[])[0]?.ports;
    expect(ports).toContainEqual({ name: 'scanner', containerPort: 8080 });
  });

  it('grants no wildcard and touches the webhook configurations only by name', () => {
    for (const { object } of [...byKind('ClusterRole'), ...byKind('Role')]) {
      for (const rule of object.rules as { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[]) {
        expect([...rule.verbs, ...rule.resources, ...rule.apiGroups], object.metadata.name).not.toContain('*');
        if (rule.resources.some((resource) => resource.endsWith('webhookconfigurations'))) {
          expect(rule.resourceNames?.length, object.metadata.name).toBe(1);
          expect(rule.verbs.sort()).toEqual(['get', 'patch', 'update']);
        }
      }
    }
  });

  it('never lets the webhook create Secrets cluster-wide (only per namespace through RoleBindings)', () => {
    const boundClusterWide = new Set(byKind('ClusterRoleBinding').map(({ object }) => String(at(object, ['roleRef', 'name']))));
    for (const { object } of byKind('ClusterRole').filter(({ object: role }) => boundClusterWide.has(role.metadata.name))) {
      for (const rule of object.rules as { resources: string[]; verbs: string[] }[]) {
        if (rule.resources.includes('secrets')) expect(rule.verbs, object.metadata.name).not.toContain('create');
      }
    }
  });
});

describe('container images (Dockerfile, Dockerfile.scanner)', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  const scanner = readFileSync(join(repoRoot, 'Dockerfile.scanner'), 'utf8');
  const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
  const instructions = (text: string) => text.split('\n').filter((line) => /^[A-Z]+\s/.test(line));

  it('builds in two stages on Node 22 LTS and ships production dependencies only', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22[-\w.]*$/m);
    expect(instructions(dockerfile).filter((line) => line.startsWith('FROM '))).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    expect(dockerfile).toContain('npm prune --omit=dev');
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    // Only compiled output, production node_modules and the shipped files reach the runtime stage.
    expect(runtime).not.toMatch(/COPY[^\n]*\bsrc\b/);
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
  });

  it('runs as a fixed non-root uid matching the manifests', () => {
    const users = instructions(dockerfile).filter((line) => line.startsWith('USER '));
    expect(users.at(-1)).toBe('USER 10001:10001');
    for (const { object } of byKind('Deployment')) expect(at(object, ['spec', 'template', 'spec', 'securityContext', 'runAsUser'])).toBe(10001);
  });

  it('adds Trivy in the scanner variant and points the scanner at it', () => {
    expect(scanner).toMatch(/COPY --from=trivy \/usr\/local\/bin\/trivy \/usr\/local\/bin\/trivy/);
    expect(scanner).toContain('PORTCULLIS_SCANNER_TRIVY_PATH=/usr/local/bin/trivy');
    expect(instructions(scanner).filter((line) => line.startsWith('USER ')).at(-1)).toBe('USER 10001:10001');
  });

  it('keeps state, dependencies and secrets out of the build context', () => {
    for (const entry of ['.git', 'node_modules', 'dist', '.portcullis', '*.key', '*.pem']) expect(ignore).toContain(entry);
  });
});
