/**
 * The one error class of the project. Every error that crosses a module boundary is a
 * PortcullisError with a stable code from ERROR_CODES; each HTTP surface turns it into its own
 * envelope (OCI `{errors:[…]}`, Harbor `{errors:[…]}`, a JSON `{error:{…}}` elsewhere).
 *
 * Messages say where, what was expected and what came, e.g.
 * `policies/require-scan.yaml:12:7 /spec/rules/0/maxSeverity: must be one of Low, Medium, High, Critical, got "Severe"`.
 */

/** The catalog of stable error codes. docs/errors.md documents each one (a test keeps them in step). */
export const ERROR_CODES = {
  CONFIG_INVALID: { status: 500, summary: 'The configuration (file or PORTCULLIS_* environment) is invalid.' },
  POLICY_INVALID: { status: 400, summary: 'A policy document does not match the policy schema.' },
  POLICY_PARSE_ERROR: { status: 400, summary: 'A policy file is not valid YAML.' },
  REQUEST_MALFORMED: { status: 400, summary: 'The request body is not well-formed or misses a required field.' },
  REQUEST_TOO_LARGE: { status: 413, summary: 'The request body exceeds the configured limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request Content-Type is not accepted by this endpoint.' },
  NOT_FOUND: { status: 404, summary: 'No such route or resource.' },
  UNAUTHORIZED: { status: 401, summary: 'Authentication is required or the credentials are wrong.' },
  FORBIDDEN: { status: 403, summary: 'The authenticated principal may not perform this action.' },
  CONFLICT: { status: 409, summary: 'The resource changed or already exists.' },
  VERDICT_UNAVAILABLE: { status: 503, summary: 'A verdict source could not answer before the deadline.' },
  CERT_INVALID: { status: 500, summary: 'A certificate or key is corrupt, mismatched or not valid for the required names.' },
  KUBE_API_ERROR: { status: 502, summary: 'A call to the Kubernetes API failed.' },
  INTERNAL: { status: 500, summary: 'An unexpected error; the log has the details.' },
  REGISTRY_BLOB_UNKNOWN: { status: 404, summary: 'OCI `BLOB_UNKNOWN`: the blob is not known to the repository.' },
  REGISTRY_BLOB_UPLOAD_INVALID: { status: 400, summary: 'OCI `BLOB_UPLOAD_INVALID`: the upload request or chunk is invalid (bad `Content-Range`, missing digest).' },
  REGISTRY_BLOB_UPLOAD_UNKNOWN: { status: 404, summary: 'OCI `BLOB_UPLOAD_UNKNOWN`: no upload session with that id in the repository.' },
  REGISTRY_DIGEST_INVALID: { status: 400, summary: 'OCI `DIGEST_INVALID`: the content does not match the given digest, or the digest is malformed; nothing was stored.' },
  REGISTRY_MANIFEST_BLOB_UNKNOWN: { status: 400, summary: 'OCI `MANIFEST_BLOB_UNKNOWN`: a manifest references a blob or child manifest the repository does not have.' },
  REGISTRY_MANIFEST_INVALID: { status: 400, summary: 'OCI `MANIFEST_INVALID`: the manifest is not valid JSON, does not match its media type, or the media type is unknown.' },
  REGISTRY_MANIFEST_UNKNOWN: { status: 404, summary: 'OCI `MANIFEST_UNKNOWN`: no manifest with that tag or digest in the repository.' },
  REGISTRY_MANIFEST_TOO_LARGE: { status: 413, summary: 'OCI `SIZE_INVALID`: a manifest is larger than 4 MiB.' },
  REGISTRY_NAME_INVALID: { status: 400, summary: 'OCI `NAME_INVALID`: the repository name is not `project/repo[/…]` of lower-case components (path traversal included).' },
  REGISTRY_NAME_UNKNOWN: { status: 404, summary: 'OCI `NAME_UNKNOWN`: the repository (or its project) does not exist.' },
  REGISTRY_SIZE_INVALID: { status: 400, summary: 'OCI `SIZE_INVALID`: the content length does not match what was announced.' },
  REGISTRY_RANGE_INVALID: { status: 416, summary: 'OCI `BLOB_UPLOAD_INVALID` with 416: a chunk does not start where the upload ends, or a `Range` cannot be served.' },
  REGISTRY_PAGINATION_NUMBER_INVALID: { status: 400, summary: 'OCI `PAGINATION_NUMBER_INVALID`: the `n` query parameter is not a non-negative integer.' },
  REGISTRY_TAG_INVALID: { status: 400, summary: 'OCI `TAG_INVALID`: the tag does not match `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.' },
  REGISTRY_UNSUPPORTED: { status: 405, summary: 'OCI `UNSUPPORTED`: the operation is not supported (e.g. deleting a blob still referenced).' },
  REGISTRY_DENIED: { status: 403, summary: 'OCI `DENIED`: the principal may not access the repository with that action.' },
  REGISTRY_SCANNER_UNAVAILABLE: { status: 503, summary: 'No scanner is configured for the registry; scan requests cannot be accepted.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface PortcullisErrorOptions {
  /** HTTP status to answer with; defaults to the catalog's status for the code. */
  status?: number;
  /** Machine-readable detail (field path, expected/actual values); served to clients. */
  detail?: unknown;
  cause?: unknown;
}

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;

  constructor(code: ErrorCode, message: string, options: PortcullisErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PortcullisError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = options.detail;
  }
}

export function isPortcullisError(error: unknown): error is PortcullisError {
  return error instanceof PortcullisError;
}

/** A short, safe description of any thrown value, for logs and wrapped messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
