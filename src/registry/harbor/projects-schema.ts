import type { JSONSchemaType } from 'ajv';

/**
 * Request shapes of the project routes, after Harbor's swagger (`ProjectReq`, `ProjectMetadata`,
 * `CVEAllowlist`). The schemas are typed against the interfaces, so the two cannot drift.
 */
export interface ProjectMetadataReq {
  public?: string;
  enable_content_trust?: string | null;
  enable_content_trust_cosign?: string | null;
  prevent_vul?: string | null;
  severity?: string | null;
  auto_scan?: string | null;
  auto_sbom_generation?: string | null;
  reuse_sys_cve_allowlist?: string | null;
  retention_id?: string | null;
  proxy_speed_kb?: string | null;
  max_upstream_conn?: string | null;
  proxy_cache_local_on_not_found?: string | null;
}

export interface CveAllowlistReq {
  id?: number;
  project_id?: number;
  expires_at?: number | null;
  items?: { cve_id: string }[];
  creation_time?: string;
  update_time?: string;
}

export interface ProjectReq {
  project_name?: string;
  public?: boolean | null;
  metadata?: ProjectMetadataReq;
  cve_allowlist?: CveAllowlistReq;
  storage_limit?: number | null;
  registry_id?: number | null;
}

const optString = { type: 'string', nullable: true, maxLength: 255 } as const;
const flag = { type: 'string', nullable: true, enum: ['true', 'false', null] } as const;

export const projectMetadataSchema: JSONSchemaType<ProjectMetadataReq> = {
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: {
    public: { type: 'string', nullable: true, enum: ['true', 'false'] },
    enable_content_trust: flag,
    enable_content_trust_cosign: flag,
    prevent_vul: flag,
    severity: { type: 'string', nullable: true, enum: ['none', 'low', 'medium', 'high', 'critical', null] },
    auto_scan: flag,
    auto_sbom_generation: flag,
    reuse_sys_cve_allowlist: flag,
    retention_id: optString,
    proxy_speed_kb: optString,
    max_upstream_conn: optString,
    proxy_cache_local_on_not_found: flag,
  },
};

export const cveAllowlistSchema: JSONSchemaType<CveAllowlistReq> = {
  type: 'object',
  required: [],
  properties: {
    id: { type: 'integer', nullable: true },
    project_id: { type: 'integer', nullable: true },
    expires_at: { type: 'integer', nullable: true },
    items: {
      type: 'array',
      nullable: true,
      maxItems: 10_000,
      items: { type: 'object', required: ['cve_id'], properties: { cve_id: { type: 'string', minLength: 1, maxLength: 64 } } },
    },
    creation_time: { type: 'string', nullable: true },
    update_time: { type: 'string', nullable: true },
  },
};

export const projectReqSchema: JSONSchemaType<ProjectReq> = {
  type: 'object',
  required: [],
  properties: {
    project_name: { type: 'string', nullable: true, minLength: 1, maxLength: 255 },
    public: { type: 'boolean', nullable: true },
    metadata: { ...projectMetadataSchema, nullable: true },
    cve_allowlist: { ...cveAllowlistSchema, nullable: true },
    storage_limit: { type: 'integer', nullable: true },
    registry_id: { type: 'integer', nullable: true },
  },
};
