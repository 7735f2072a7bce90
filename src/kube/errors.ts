import { ApiException } from '@kubernetes/client-node';
import { PortcullisError, describeError } from '../errors.js';

/** What a failed Kubernetes call leaves in `PortcullisError.detail`. */
export interface KubeErrorDetail {
  /** What was attempted, e.g. `replace secrets portcullis/portcullis-webhook-tls`. */
  operation: string;
  /** HTTP status from the API server; undefined when it was never reached. */
  kubeStatus?: number;
  /** The `Status.reason` (`Conflict`, `NotFound`, `AlreadyExists`, `Forbidden`, …) when given. */
  reason?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStatus(body: unknown): { reason?: string; message?: string } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as unknown;
    } catch {
      // Not JSON (a proxy's HTML page, say): keep the text as the message.
      return body.trim() === '' ? {} : { message: body.trim().slice(0, 300) };
    }
  }
  if (!isRecord(parsed)) return {};
  return {
    ...(typeof parsed.reason === 'string' && parsed.reason !== '' ? { reason: parsed.reason } : {}),
    ...(typeof parsed.message === 'string' ? { message: parsed.message } : {}),
  };
}

const REASON_BY_STATUS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** Converts anything a client-node call throws into `PortcullisError('KUBE_API_ERROR')`. */
export function toKubeError(error: unknown, operation: string): PortcullisError {
  if (error instanceof PortcullisError) return error;
  let kubeStatus: number | undefined;
  let reason: string | undefined;
  let message: string;
  if (error instanceof ApiException) {
    kubeStatus = error.code;
    const status = parseStatus(error.body);
    reason = status.reason ?? REASON_BY_STATUS[error.code];
    message = status.message ?? `HTTP ${error.code}`;
  } else if (isRecord(error) && typeof error.statusCode === 'number') {
    // The Watch helper reports a non-200 answer as an Error with statusCode.
    kubeStatus = error.statusCode;
    reason = REASON_BY_STATUS[error.statusCode];
    message = describeError(error);
  } else {
    message = describeError(error);
  }
  const detail: KubeErrorDetail = { operation, ...(kubeStatus !== undefined ? { kubeStatus } : {}), ...(reason ? { reason } : {}) };
  const head = kubeStatus === undefined ? 'unreachable' : `${kubeStatus}${reason ? ` ${reason}` : ''}`;
  return new PortcullisError('KUBE_API_ERROR', `kubernetes ${operation}: ${head}: ${message}`, { detail, cause: error });
}

export function kubeErrorDetail(error: unknown): KubeErrorDetail | undefined {
  if (!(error instanceof PortcullisError) || error.code !== 'KUBE_API_ERROR' || !isRecord(error.detail)) return undefined;
  const detail = error.detail;
  if (typeof detail.operation !== 'string') return undefined;
  return {
    operation: detail.operation,
    ...(typeof detail.kubeStatus === 'number' ? { kubeStatus: detail.kubeStatus } : {}),
    ...(typeof detail.reason === 'string' ? { reason: detail.reason } : {}),
  };
}

/** True for a 409 Conflict: the object changed since it was read (re-read and retry). */
export function isConflict(error: unknown): boolean {
  const detail = kubeErrorDetail(error);
  return detail?.kubeStatus === 409 && detail.reason !== 'AlreadyExists';
}

/** True for a 409 AlreadyExists answer to a create. */
export function isAlreadyExists(error: unknown): boolean {
  const detail = kubeErrorDetail(error);
  return detail?.kubeStatus === 409 && detail.reason === 'AlreadyExists';
}

/** True for a 404 NotFound. */
export function isNotFound(error: unknown): boolean {
  return kubeErrorDetail(error)?.kubeStatus === 404;
}
