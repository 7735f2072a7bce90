import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, watch as watchDir, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { PortcullisError } from '../errors.js';
import type { CertificateMaterial, MaterialSources } from './material.js';
import { StoreConflictError, type CertificateStore, type StoredMaterial } from './store.js';

/** The file names in a certificate directory (the same keys as the Secret). */
export const FILES = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

/*
 * Layout of a certificate directory:
 *
 *   DIR/
 *     ca.crt    CA certificate(s), PEM; two during a CA rotation (mode 0644)
 *     ca.key    private key of the signing CA (mode 0600; absent for bring-your-own)
 *     tls.crt   serving certificate, PEM (mode 0644)
 *     tls.key   serving private key (mode 0600)
 */

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw new PortcullisError('CERT_INVALID', `file ${path}: cannot read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

interface RawFiles {
  caBundle?: string;
  caKey?: string;
  cert?: string;
  key?: string;
}

function digest(files: RawFiles): string {
  return createHash('sha256')
    .update([files.caBundle ?? '', files.caKey ?? '', files.cert ?? '', files.key ?? ''].join('\0'))
    .digest('hex')
    .slice(0, 16);
}

function isEmpty(files: RawFiles): boolean {
  return files.caBundle === undefined && files.caKey === undefined && files.cert === undefined && files.key === undefined;
}

/** Writes `text` to `path` atomically: a temporary file in the same directory, then a rename. */
export function writeFileAtomic(path: string, text: string, mode: number): void {
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(temporary, text, { mode });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

export interface FileStoreOptions {
  /** Whether `ca.key` must exist (managed mode) or may be absent (bring-your-own). */
  requireCaKey: boolean;
  /** How long to wait after a change event before reporting it, so that a multi-file write is seen whole. */
  debounceMs?: number;
}

/** The certificate directory store. Writes are atomic per file; keys are written with mode 0600. */
export function createFileStore(dir: string, options: FileStoreOptions): CertificateStore {
  const paths = { caBundle: join(dir, FILES.caBundle), caKey: join(dir, FILES.caKey), cert: join(dir, FILES.cert), key: join(dir, FILES.key) };
  const sources: MaterialSources = {
    caBundle: `file ${paths.caBundle}`,
    caKey: `file ${paths.caKey}`,
    cert: `file ${paths.cert}`,
    key: `file ${paths.key}`,
  };

  function readRaw(): RawFiles {
    const files: RawFiles = {};
    for (const piece of ['caBundle', 'caKey', 'cert', 'key'] as const) {
      const text = readOptional(paths[piece]);
      if (text !== undefined) files[piece] = text;
    }
    return files;
  }

  function loadSync(): StoredMaterial | undefined {
    const raw = readRaw();
    if (isEmpty(raw)) return undefined;
    const { caBundle, caKey, cert, key } = raw;
    const missing = (['caBundle', 'cert', 'key', ...(options.requireCaKey ? (['caKey'] as const) : [])] as const).filter(
      (piece) => ({ caBundle, caKey, cert, key })[piece] === undefined,
    );
    if (missing.length > 0) {
      throw new PortcullisError('CERT_INVALID', `directory ${dir}: ${missing.map((piece) => FILES[piece]).join(', ')} missing (expected ${Object.values(FILES).join(', ')})`);
    }
    const material: CertificateMaterial = { caBundle: caBundle ?? '', ...(caKey !== undefined ? { caKey } : {}), cert: cert ?? '', key: key ?? '' };
    return { material, version: digest(raw) };
  }

  return {
    description: `directory ${dir}`,
    sources,
    load: async () => loadSync(),
    currentVersion: async () => {
      const raw = readRaw();
      return isEmpty(raw) ? undefined : digest(raw);
    },
    save: async (material, expected) => {
      const raw = readRaw();
      if ((isEmpty(raw) ? undefined : digest(raw)) !== expected) throw new StoreConflictError(`directory ${dir}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      // Order matters for a reader between renames: the CA first (trust before use), the key
      // before the certificate, so a watcher that reloads at the last rename sees a complete pair.
      writeFileAtomic(paths.caBundle, material.caBundle, 0o644);
      if (material.caKey !== undefined) writeFileAtomic(paths.caKey, material.caKey, 0o600);
      writeFileAtomic(paths.key, material.key, 0o600);
      writeFileAtomic(paths.cert, material.cert, 0o644);
      return digest(readRaw());
    },
    watch: (onChange) => {
      let watcher: FSWatcher | undefined;
      let timer: NodeJS.Timeout | undefined;
      const fire = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(onChange, options.debounceMs ?? 100);
      };
      if (existsSync(dir)) {
        // Watching the directory (not the files) also sees Kubernetes' atomic `..data` symlink swap.
        watcher = watchDir(dir, { persistent: false }, fire);
        // A directory that disappears ends the watch; the periodic check still reloads, and
        // reports the missing files.
        watcher.on('error', () => watcher?.close());
      }
      return () => {
        if (timer) clearTimeout(timer);
        watcher?.close();
      };
    },
  };
}
