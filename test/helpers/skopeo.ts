import { execFile } from 'node:child_process';

export interface SkopeoResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `skopeo` (Debian) with `--insecure-policy` (no signature policy file is needed for
 * tests) and an empty auth file path so the developer's own credentials never leak into a test.
 */
export function skopeo(args: string[], options: { timeoutMs?: number; authFile?: string } = {}): Promise<SkopeoResult> {
  return new Promise((resolve) => {
    execFile(
      'skopeo',
      ['--insecure-policy', ...args],
      {
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, REGISTRY_AUTH_FILE: options.authFile ?? '/nonexistent/portcullis-skopeo-auth.json', HOME: process.env.HOME ?? '/tmp' },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Throws with skopeo's stderr when it failed; returns stdout. */
export async function skopeoOk(args: string[], options: { timeoutMs?: number; authFile?: string } = {}): Promise<string> {
  const result = await skopeo(args, options);
  if (result.code !== 0) throw new Error(`skopeo ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}
