/**
 * Small pieces of `portcullis up` that are not a subsystem of their own: the roles, where shipped
 * files are, how Kubernetes is reached, the legacy admin password file, the CA trust directory, and
 * the default PullSecretPolicy following the registry's actual address. Used by src/main.ts, and by
 * src/cli/up.ts for the roles (so that the CLI checks --role without loading the suite).
 */
import { accessSync, constants as fsConstants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './config/schema.js';
import type { PolicySet } from './policy/compile.js';
import { compileGlobs } from './policy/match.js';
import type { PolicyStore } from './policy/store.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Resolves a shipped directory (`policies`, `webhooks`): relative to `cwd` when it exists there,
 * otherwise relative to the installed package, so that `npx portcullis up` works from anywhere.
 */
export function resolveShipped(path: string, cwd: string): string {
  if (isAbsolute(path)) return path;
  const fromCwd = resolve(cwd, path);
  if (existsSync(fromCwd)) return fromCwd;
  return resolve(PACKAGE_ROOT, path);
}

/** How Kubernetes is reached (`kube.mode auto`): a kubeconfig, the in-cluster config, or not at all. */
export type KubeAccess = { mode: 'kubeconfig'; file: string } | { mode: 'in-cluster' } | { mode: 'none'; reason: string };

/** Detects how Kubernetes can be reached, without contacting it. */
export function detectKube(config: Config['kube'], env: Readonly<Record<string, string | undefined>>, serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount'): KubeAccess {
  if (config.mode === 'off') return { mode: 'none', reason: 'kube.mode is off' };
  const file = config.kubeconfig ?? env.KUBECONFIG?.split(':').find((path) => path !== '');
  if (file) return { mode: 'kubeconfig', file };
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, 'token'))) return { mode: 'in-cluster' };
  return { mode: 'none', reason: 'KUBECONFIG is not set and no in-cluster service account was found' };
}

/** Finds an executable named `command` (a path, or a name looked up on PATH). */
export function findExecutable(command: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const candidates = command.includes('/') ? [command] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here (or not executable): try the next PATH entry.
    }
  }
  return undefined;
}

/** The roles of `portcullis up`, in the order they start. */
export const ROLES = ['webhook', 'registry', 'scanner'] as const;
export type Role = (typeof ROLES)[number];

export interface AdminCredentials {
  username: string;
  /** Whether this start created the admin (the first start on this database). */
  created: boolean;
  /**
   * Set only when this start created the admin with a generated password: the banner prints it
   * this once. Only its hash is stored.
   */
  generatedPassword?: string;
}

/**
 * Where versions before 2026-12 kept a generated admin password in plain text. It is no longer
 * written or read; `up` warns while the file exists.
 */
export function legacyAdminPasswordFile(dataDir: string): string | undefined {
  const file = join(dataDir, 'admin-password');
  return existsSync(file) ? file : undefined;
}

/**
 * Writes the CA bundle alone into `<certs.dir>/trust/ca.crt`: a directory usable as
 * `skopeo --cert-dir` or Docker's certs.d (the certificate directory itself also holds keys,
 * which those tools would try to use as client certificates). Returns the file.
 */
export function writeTrustBundle(certsDir: string, caBundle: string): string {
  const dir = join(certsDir, 'trust');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'ca.crt');
  writeFileSync(file, caBundle);
  return file;
}

/** Where the registry's own default address appears in the shipped PullSecretPolicy. */
const DEFAULT_REGISTRY_HOSTS = ['127.0.0.1:5000', 'localhost:5000'];

/**
 * The policy store as the admission pipelines see it, with every PullSecretPolicy that covers the
 * included registry's default address (127.0.0.1:5000 / localhost:5000) also covering the address
 * it actually listens on (`--registry-listen 127.0.0.1:5001`, or a port chosen with `:0`). Other
 * policies are untouched. The augmented set is computed once per loaded set.
 */
export function withRegistryHosts(store: PolicyStore, hosts: readonly string[]): PolicyStore {
  const extra = hosts.map((host) => host.toLowerCase()).filter((host) => !DEFAULT_REGISTRY_HOSTS.includes(host));
  if (extra.length === 0) return store;
  const augmented = new WeakMap<PolicySet, PolicySet>();
  const augment = (set: PolicySet): PolicySet => {
    let result = augmented.get(set);
    if (!result) {
      result = {
        ...set,
        pullSecretPolicies: set.pullSecretPolicies.map((policy) => {
          if (!policy.registries.patterns.some((pattern) => DEFAULT_REGISTRY_HOSTS.includes(pattern))) return policy;
          const patterns = [...new Set([...policy.registries.patterns, ...extra])];
          return { ...policy, registries: { patterns, matches: compileGlobs(patterns) } };
        }),
      };
      augmented.set(set, result);
    }
    return result;
  };
  return {
    ...store,
    current: () => {
      const set = store.current();
      return set ? augment(set) : undefined;
    },
    onChange: (listener) => store.onChange((set) => listener(augment(set))),
  };
}
