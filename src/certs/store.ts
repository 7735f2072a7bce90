import type { CertificateMaterial, MaterialSources } from './material.js';

/** Material as read from a store, with the version a conditional save must name. */
export interface StoredMaterial {
  material: CertificateMaterial;
  /** Opaque version (a Secret's resourceVersion, a digest of the files). */
  version: string;
}

/**
 * Where certificates live: a directory (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`) or a
 * `kubernetes.io/tls` Secret with `ca.crt` (and `ca.key` when Portcullis manages the CA).
 */
export interface CertificateStore {
  /** `directory /data/certs` or `secret portcullis/portcullis-webhook-tls`, for logs and errors. */
  readonly description: string;
  /** The error-message names of each piece (`file /data/certs/ca.crt`, `secret ns/name key ca.crt`). */
  readonly sources: MaterialSources;
  /**
   * The stored material, or undefined when nothing is stored at all. Throws CERT_INVALID naming the
   * missing piece when only part is stored, KUBE_API_ERROR when the API server cannot be read.
   */
  load(): Promise<StoredMaterial | undefined>;
  /** The version of whatever is stored, complete or not (undefined: nothing stored). For repairing a broken store. */
  currentVersion(): Promise<string | undefined>;
  /**
   * Saves `material` if the stored version is still `expected` (undefined: nothing stored yet).
   * Returns the new version. Throws StoreConflictError when someone else wrote first: re-load, decide again.
   */
  save(material: CertificateMaterial, expected: string | undefined): Promise<string>;
  /** Calls `onChange` (possibly more than once per change) when the stored material may have changed. Returns a stop function. */
  watch(onChange: () => void): () => void;
}

/** Another writer changed the store since it was loaded. */
export class StoreConflictError extends Error {
  constructor(readonly description: string) {
    super(`${description} changed since it was read`);
    this.name = 'StoreConflictError';
  }
}
