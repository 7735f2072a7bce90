import { Ajv } from 'ajv';
import { fetch, type Dispatcher } from 'undici';
import { PortcullisError, describeError } from '../errors.js';
import { effectiveTag, type ImageReference } from '../policy/image-reference.js';
import { SEVERITIES, VERDICT_STATES, type Verdict } from '../policy/types.js';
import { raceDeadline } from './cache.js';
import type { VerdictOptions, VerdictSource } from './source.js';

/**
 * The `builtin` verdict source: the included registry resolves tags, the included scanner knows
 * the state of every digest. In `portcullis up` both are in this process (`createBuiltinVerdictSource`
 * over the scanner's own `verdict` method); when the webhook runs apart, `httpDigestVerdicts`
 * asks the scanner role over HTTP (`GET /api/v1/portcullis/verdicts/{digest}`).
 */

export interface DigestVerdictRequest {
  /** `project/repo` in the built-in registry. */
  repository: string;
  digest: string;
  triggerScan: boolean;
}

/** The scanner's side: the verdict for one digest (never throws for absence; throws when it cannot answer). */
export interface DigestVerdicts {
  verdict(request: DigestVerdictRequest, signal: AbortSignal): Promise<Verdict>;
}

/** Tag → digest from the registry's manifests; undefined when the repository or tag does not exist. */
export interface DigestResolver {
  resolve(repository: string, tag: string, signal: AbortSignal): Promise<string | undefined>;
}

export interface BuiltinSourceOptions {
  verdicts: DigestVerdicts;
  resolver: DigestResolver;
  /**
   * Registry hosts (`registry.example.com`, `127.0.0.1:5000`) this source answers for. Images of
   * other registries get `unsupported` verdicts and no digest. Empty: answer for every host.
   */
  registryHosts: readonly string[];
}

/** Rejects with the abort reason as soon as `signal` aborts, whatever `work` is doing. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return raceDeadline(work, signal, () => abortError(signal));
}

function abortError(signal: AbortSignal): PortcullisError {
  return new PortcullisError('VERDICT_UNAVAILABLE', `builtin verdict source: deadline passed (${describeError(signal.reason)})`, { cause: signal.reason });
}

export function createBuiltinVerdictSource(options: BuiltinSourceOptions): VerdictSource {
  const hosts = new Set(options.registryHosts.map((host) => host.toLowerCase()));
  const ours = (reference: ImageReference) => hosts.size === 0 || hosts.has(reference.registry);
  return {
    name: 'builtin',
    async resolveDigest(reference: ImageReference, verdictOptions: VerdictOptions): Promise<string | undefined> {
      if (reference.digest) return reference.digest;
      if (!ours(reference)) return undefined;
      const tag = effectiveTag(reference) ?? 'latest';
      return raceAbort(options.resolver.resolve(reference.repository, tag, verdictOptions.signal), verdictOptions.signal);
    },
    async verdict(reference: ImageReference, digest: string, verdictOptions: VerdictOptions): Promise<Verdict> {
      if (!ours(reference)) {
        return { state: 'unsupported', digest, reason: `${reference.registry} is not the built-in registry (${[...hosts].join(', ')}); its images are not scanned here` };
      }
      const request = { repository: reference.repository, digest, triggerScan: verdictOptions.triggerScan };
      return raceAbort(options.verdicts.verdict(request, verdictOptions.signal), verdictOptions.signal);
    },
  };
}

// ---- over HTTP ---------------------------------------------------------------------------------

const findingSchema = {
  type: 'object',
  required: ['id', 'package', 'installedVersion', 'severity'],
  properties: {
    id: { type: 'string' },
    package: { type: 'string' },
    installedVersion: { type: 'string' },
    fixedVersion: { type: 'string' },
    severity: { type: 'string', enum: [...SEVERITIES] },
    status: { type: 'string' },
    title: { type: 'string' },
    links: { type: 'array', items: { type: 'string' } },
  },
};

const verdictSchema = {
  oneOf: [
    {
      type: 'object',
      required: ['state', 'digest', 'scannedAt', 'findings'],
      properties: {
        state: { const: 'scanned' },
        digest: { type: 'string' },
        scannedAt: { type: 'string' },
        findings: { type: 'array', items: findingSchema },
        scanner: { type: 'string' },
      },
    },
    {
      type: 'object',
      required: ['state', 'reason'],
      properties: {
        state: { enum: VERDICT_STATES.filter((state) => state !== 'scanned') },
        digest: { type: 'string' },
        reason: { type: 'string' },
      },
    },
  ],
};

const validateVerdict = new Ajv({ strict: false }).compile<Verdict>(verdictSchema);

export interface HttpVerdictsOptions {
  /** Base URL of the scanner role (`https://portcullis-scanner.portcullis.svc:8080`). */
  scannerUrl: string;
  /** Sent as `Authorization: Bearer …` when the scanner API requires a token. */
  apiToken?: string;
  /** undici dispatcher trusting the scanner's CA (see test/helpers/tls.ts `trustingAgent`). */
  dispatcher?: Dispatcher;
}

/** The scanner's verdicts over HTTP, for a webhook that runs apart from the scanner. */
export function httpDigestVerdicts(options: HttpVerdictsOptions): DigestVerdicts {
  const base = options.scannerUrl.replace(/\/+$/, '');
  return {
    async verdict(request, signal) {
      const url = new URL(`${base}/api/v1/portcullis/verdicts/${encodeURIComponent(request.digest)}`);
      url.searchParams.set('repository', request.repository);
      url.searchParams.set('triggerScan', String(request.triggerScan));
      let response;
      try {
        response = await fetch(url, {
          signal,
          headers: { accept: 'application/json', ...(options.apiToken ? { authorization: `Bearer ${options.apiToken}` } : {}) },
          ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
        });
      } catch (error) {
        throw new PortcullisError('VERDICT_UNAVAILABLE', `scanner ${base} unreachable: ${describeError(error)}`, { cause: error });
      }
      const text = await response.text();
      if (!response.ok) throw new PortcullisError('VERDICT_UNAVAILABLE', `scanner ${base} answered ${response.status}: ${text.slice(0, 200)}`);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        throw new PortcullisError('VERDICT_UNAVAILABLE', `scanner ${base}: verdict is not JSON: ${describeError(error)}`);
      }
      if (!validateVerdict(body)) {
        const first = validateVerdict.errors?.[0];
        throw new PortcullisError('VERDICT_UNAVAILABLE', `scanner ${base}: verdict ${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`);
      }
      return body;
    },
  };
}
