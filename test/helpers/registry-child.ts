import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { childEnv, repoRoot } from './cli.js';

/** A `portcullis registry` child process, listening. */
export interface RegistryChild {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything it printed on stdout so far. */
  stdout(): string;
  /** Everything it printed on stderr so far (its log). */
  stderr(): string;
}

/**
 * Starts `portcullis registry --data-dir DIR --listen 127.0.0.1:0` as its own process (Node with
 * tsx's loader, not the tsx wrapper, so that a signal hits the process that serves) and resolves
 * once it prints its address. Without `tlsCert`/`tlsKey` it finds its own key pair, or serves plain
 * HTTP. Its environment is childEnv(`env`).
 */
export function startRegistryChild(options: { dataDir: string; tlsCert?: string; tlsKey?: string; env?: Record<string, string | undefined> }): Promise<RegistryChild> {
  const tls = options.tlsCert && options.tlsKey ? ['--tls-cert', options.tlsCert, '--tls-key', options.tlsKey] : [];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/helpers/registry-process.ts'), '--data-dir', options.dataDir, '--listen', '127.0.0.1:0', ...tls],
    { cwd: repoRoot, env: childEnv({ PORTCULLIS_LOG_LEVEL: 'warn', ...options.env }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /registry listening on (https?:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (match) resolve({ child, url: match[1] as string, port: Number(match[2]), stdout: () => out, stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`registry exited ${code} before listening: ${err}`)));
  });
}
