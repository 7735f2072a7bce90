import type { JSONSchemaType } from 'ajv';
import { LOG_LEVELS, type LogLevel } from '../log/logger.js';

/**
 * The whole configuration of every role. Each subsystem is handed only its own slice by
 * src/main.ts. After defaults are applied every field is present, except those marked optional,
 * whose absence means "not configured" (and the docs say what happens then).
 *
 * docs/configuration.md lists every field with its environment variable; the schema below is the
 * source for both (a test keeps them in step).
 */
export interface Config {
  /** Where embedded state lives: SQLite file, blobs, certificates, generated secrets. */
  dataDir: string;
  log: { level: LogLevel };
  database: {
    /** SQLite file; used when `url` is not set. */
    sqlitePath: string;
    /** PostgreSQL connection string (`postgres://…`); when set, SQLite is not used. */
    url?: string;
  };
  kube: {
    /** `auto`: use KUBECONFIG or the in-cluster config when present, run without Kubernetes otherwise. */
    mode: 'auto' | 'off';
    kubeconfig?: string;
  };
  webhook: {
    /** HOST:PORT the admission HTTPS server listens on. */
    listen: string;
    tls: { certFile: string; keyFile: string };
    /** Directory of policy YAML files, watched for changes. */
    policiesDir: string;
    /** Directory of the webhook configuration YAML: the source of the served paths and the timeout. */
    webhooksDir: string;
    bodyLimitBytes: number;
    /** Namespaces never evaluated (the suite's own and kube-system), globs allowed. */
    excludedNamespaces: string[];
    /** Time kept free for answering: verdict lookups get timeoutSeconds minus this. */
    deadlineMarginMs: number;
    verdicts: {
      source: 'builtin' | 'harbor' | 'none';
      cacheMax: number;
      cacheTtlSeconds: number;
      harbor: {
        url?: string;
        username?: string;
        password?: string;
        caFile?: string;
        insecureSkipVerify: boolean;
      };
    };
  };
  certs: {
    /** `managed`: Portcullis issues and rotates; `external`: certificates come from elsewhere, only watched. */
    mode: 'managed' | 'external';
    dir: string;
    service: string;
    namespace: string;
    dnsNames: string[];
    ipAddresses: string[];
    /** Kubernetes Secret holding the certificates when running in a cluster. */
    secretName?: string;
    caValidityDays: number;
    servingValidityDays: number;
    /** Renew a certificate (serving, or the CA) when less than this share of its lifetime remains. */
    renewBeforeFraction: number;
    /** During a CA rotation: how long the new CA is trusted before it signs, and the old one kept after. */
    overlapSeconds: number;
    /** How often the stores, the caBundle of the webhooks and the expiry are re-checked. */
    checkIntervalSeconds: number;
  };
  registry: {
    listen: string;
    /** The address clients use (`https://registry.example.com`); derived from `listen` when absent. */
    externalUrl?: string;
    storageDir: string;
    tls: { enabled: boolean };
    tokenTtlSeconds: number;
    /**
     * Proxies in front of the registry (an Ingress controller, a load balancer), as addresses or
     * CIDRs: from these, the client address is taken from `X-Forwarded-For`, so that failed logins
     * are counted per real client. Empty: the peer address is the client.
     */
    trustedProxies?: string[];
    /** The admin's password on the first start, for automation (otherwise one is generated and printed once), and what `portcullis admin reset-password --from-config` sets. */
    adminPassword?: string;
    /** How `portcullis project …` and `portcullis robot …` reach the registry's API. */
    client?: {
      /** Registry URL for `portcullis project …` / `robot …` (default: externalUrl, else https://listen). */
      url?: string;
      /** Registry user for those commands (default `admin`). */
      username?: string;
      /** Its password (default: `PORTCULLIS_ADMIN_PASSWORD`). */
      password?: string;
      /** CA that signed the registry's certificate. */
      caFile?: string;
    };
  };
  scanner: {
    listen: string;
    trivyPath: string;
    cacheDir: string;
    concurrency: number;
    timeoutSeconds: number;
    insecure: boolean;
    extraArgs: string[];
    /** A report older than this is rescanned when its verdict is asked for. */
    maxReportAgeHours: number;
    /** Runs of a scan job before a transient failure (registry 5xx, network) becomes final. */
    maxAttempts: number;
    /** Backoff before the first retry; doubled for each further one. */
    retryBackoffSeconds: number;
    /** How often `trivy --version` is probed (readiness, vulnerability DB changes). */
    statusIntervalSeconds: number;
    /** When set, the scanner API (`/api/v1/…`) requires `Authorization: Bearer <apiToken>`. Required when `listen` is not a loopback address. */
    apiToken?: string;
  };
  audit: {
    /** Decisions older than this are pruned. */
    retentionDays: number;
    /** The newest this many decisions are kept; older ones are pruned. */
    retentionMaxRecords: number;
    /** How often the background pruning runs. */
    pruneIntervalSeconds: number;
    batchSize: number;
    flushIntervalMs: number;
    /** Decisions held in memory while the database is slow; beyond it they are dropped and counted. */
    bufferSize: number;
    /** Which decision to drop when the buffer is full. */
    dropPolicy: 'oldest' | 'newest';
    /** A bearer token that may read the audit API (for machines); users authenticate as registry users. */
    apiToken?: string;
    background: {
      /** Re-evaluate running pods (needs Kubernetes). */
      enabled: boolean;
      /** Also write wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace. */
      policyReports: boolean;
      /** Most results per PolicyReport; the most severe are kept. */
      maxReportResults: number;
    };
    /** Where `portcullis audit …` commands find the API (flags win). */
    client: { url?: string; username?: string; password?: string; token?: string; caFile?: string };
  };
}

const str = { type: 'string', minLength: 1 } as const;
const optStr = { type: 'string', minLength: 1, nullable: true } as const;
const hostPort = { type: 'string', pattern: '^[^\\s:]+:[0-9]{1,5}$' } as const;
const strList = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

export const configSchema: JSONSchemaType<Config> = {
  type: 'object',
  additionalProperties: false,
  required: ['dataDir', 'log', 'database', 'kube', 'webhook', 'certs', 'registry', 'scanner', 'audit'],
  properties: {
    dataDir: str,
    log: {
      type: 'object',
      additionalProperties: false,
      required: ['level'],
      properties: { level: { type: 'string', enum: [...LOG_LEVELS] } },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      required: ['sqlitePath'],
      properties: { sqlitePath: str, url: { ...optStr, pattern: '^postgres(ql)?://' } },
    },
    kube: {
      type: 'object',
      additionalProperties: false,
      required: ['mode'],
      properties: { mode: { type: 'string', enum: ['auto', 'off'] }, kubeconfig: optStr },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'tls', 'policiesDir', 'webhooksDir', 'bodyLimitBytes', 'excludedNamespaces', 'deadlineMarginMs', 'verdicts'],
      properties: {
        listen: hostPort,
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['certFile', 'keyFile'],
          properties: { certFile: str, keyFile: str },
        },
        policiesDir: str,
        webhooksDir: str,
        bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024 },
        excludedNamespaces: strList,
        deadlineMarginMs: { type: 'integer', minimum: 100, maximum: 10_000 },
        verdicts: {
          type: 'object',
          additionalProperties: false,
          required: ['source', 'cacheMax', 'cacheTtlSeconds', 'harbor'],
          properties: {
            source: { type: 'string', enum: ['builtin', 'harbor', 'none'] },
            cacheMax: { type: 'integer', minimum: 1 },
            cacheTtlSeconds: { type: 'integer', minimum: 1 },
            harbor: {
              type: 'object',
              additionalProperties: false,
              required: ['insecureSkipVerify'],
              properties: {
                url: { ...optStr, pattern: '^https?://' },
                username: optStr,
                password: optStr,
                caFile: optStr,
                insecureSkipVerify: { type: 'boolean' },
              },
            },
          },
        },
      },
    },
    certs: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'dir', 'service', 'namespace', 'dnsNames', 'ipAddresses', 'caValidityDays', 'servingValidityDays', 'renewBeforeFraction', 'overlapSeconds', 'checkIntervalSeconds'],
      properties: {
        mode: { type: 'string', enum: ['managed', 'external'] },
        dir: str,
        service: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
        namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
        dnsNames: strList,
        ipAddresses: strList,
        secretName: optStr,
        caValidityDays: { type: 'integer', minimum: 1 },
        servingValidityDays: { type: 'integer', minimum: 1 },
        renewBeforeFraction: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        overlapSeconds: { type: 'integer', minimum: 0 },
        checkIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
      },
    },
    registry: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'storageDir', 'tls', 'tokenTtlSeconds'],
      properties: {
        listen: hostPort,
        externalUrl: { ...optStr, pattern: '^https?://' },
        storageDir: str,
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled'],
          properties: { enabled: { type: 'boolean' } },
        },
        tokenTtlSeconds: { type: 'integer', minimum: 10, maximum: 86_400 },
        trustedProxies: { ...strList, nullable: true },
        // Read from PORTCULLIS_ADMIN_PASSWORD (the name automation expects), not the derived name.
        adminPassword: { type: 'string', minLength: 8, nullable: true, 'x-env': 'PORTCULLIS_ADMIN_PASSWORD' } as unknown as typeof optStr,
        client: {
          type: 'object',
          nullable: true,
          additionalProperties: false,
          required: [],
          properties: { url: { ...optStr, pattern: '^https?://' }, username: optStr, password: optStr, caFile: optStr },
        },
      },
    },
    scanner: {
      type: 'object',
      additionalProperties: false,
      required: [
        'listen', 'trivyPath', 'cacheDir', 'concurrency', 'timeoutSeconds', 'insecure', 'extraArgs', 'maxReportAgeHours',
        'maxAttempts', 'retryBackoffSeconds', 'statusIntervalSeconds',
      ],
      properties: {
        listen: hostPort,
        trivyPath: str,
        cacheDir: str,
        concurrency: { type: 'integer', minimum: 1, maximum: 64 },
        timeoutSeconds: { type: 'integer', minimum: 1 },
        insecure: { type: 'boolean' },
        extraArgs: { type: 'array', items: { type: 'string' } },
        maxReportAgeHours: { type: 'integer', minimum: 1 },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 20 },
        retryBackoffSeconds: { type: 'integer', minimum: 1 },
        statusIntervalSeconds: { type: 'integer', minimum: 5 },
        apiToken: { type: 'string', minLength: 16, nullable: true },
      },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      required: ['retentionDays', 'retentionMaxRecords', 'pruneIntervalSeconds', 'batchSize', 'flushIntervalMs', 'bufferSize', 'dropPolicy', 'background', 'client'],
      properties: {
        retentionDays: { type: 'integer', minimum: 1 },
        retentionMaxRecords: { type: 'integer', minimum: 1000 },
        pruneIntervalSeconds: { type: 'integer', minimum: 1 },
        batchSize: { type: 'integer', minimum: 1, maximum: 10_000 },
        flushIntervalMs: { type: 'integer', minimum: 10 },
        bufferSize: { type: 'integer', minimum: 1 },
        dropPolicy: { type: 'string', enum: ['oldest', 'newest'] },
        apiToken: { type: 'string', minLength: 16, nullable: true },
        background: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled', 'policyReports', 'maxReportResults'],
          properties: {
            enabled: { type: 'boolean' },
            policyReports: { type: 'boolean' },
            maxReportResults: { type: 'integer', minimum: 1, maximum: 5000 },
          },
        },
        client: {
          type: 'object',
          additionalProperties: false,
          required: [],
          properties: {
            url: { ...optStr, pattern: '^https?://' },
            username: optStr,
            password: optStr,
            token: optStr,
            caFile: optStr,
          },
        },
      },
    },
  },
};

/** Defaults; paths are relative to the data directory, which is itself configurable. */
export function defaultConfig(dataDir: string): Config {
  const at = (relative: string) => `${dataDir.replace(/\/+$/, '')}/${relative}`;
  return {
    dataDir,
    log: { level: 'info' },
    database: { sqlitePath: at('portcullis.db') },
    kube: { mode: 'auto' },
    webhook: {
      listen: '127.0.0.1:8443',
      tls: { certFile: at('certs/tls.crt'), keyFile: at('certs/tls.key') },
      policiesDir: 'policies',
      webhooksDir: 'webhooks',
      bodyLimitBytes: 3 * 1024 * 1024,
      excludedNamespaces: ['kube-system', 'portcullis'],
      deadlineMarginMs: 1000,
      verdicts: {
        source: 'builtin',
        cacheMax: 10_000,
        cacheTtlSeconds: 300,
        harbor: { insecureSkipVerify: false },
      },
    },
    certs: {
      mode: 'managed',
      dir: at('certs'),
      service: 'portcullis-webhook',
      namespace: 'portcullis',
      dnsNames: [],
      ipAddresses: [],
      caValidityDays: 3650,
      servingValidityDays: 365,
      renewBeforeFraction: 1 / 3,
      overlapSeconds: 86_400,
      checkIntervalSeconds: 60,
    },
    registry: {
      listen: '127.0.0.1:5000',
      storageDir: at('registry'),
      tls: { enabled: true },
      tokenTtlSeconds: 300,
      trustedProxies: [],
    },
    scanner: {
      listen: '127.0.0.1:8080',
      trivyPath: 'trivy',
      cacheDir: at('trivy-cache'),
      concurrency: 1,
      timeoutSeconds: 600,
      insecure: false,
      extraArgs: [],
      maxReportAgeHours: 168,
      maxAttempts: 3,
      retryBackoffSeconds: 30,
      statusIntervalSeconds: 300,
    },
    audit: {
      retentionDays: 90,
      retentionMaxRecords: 5_000_000,
      pruneIntervalSeconds: 600,
      batchSize: 200,
      flushIntervalMs: 1000,
      bufferSize: 10_000,
      dropPolicy: 'oldest',
      background: { enabled: true, policyReports: false, maxReportResults: 1000 },
      client: {},
    },
  };
}
