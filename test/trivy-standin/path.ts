import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding the `trivy` stand-in executable. */
export const STANDIN_DIR = fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '');
/** Absolute path of the stand-in (for `scanner.trivyPath`). */
export const STANDIN_TRIVY = `${STANDIN_DIR}/trivy`;

/**
 * An environment in which `trivy` is the stand-in: the current environment with the stand-in's
 * directory first on PATH, plus `extra` (stand-in switches such as PORTCULLIS_TEST_TRIVY_MODE).
 */
export function standinEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { ...process.env, PATH: `${STANDIN_DIR}${delimiter}${process.env.PATH ?? ''}`, ...extra };
}
