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
