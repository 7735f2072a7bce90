import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { testTls } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { writeOciLayout, type LayoutImage, type WrittenLayout } from './oci-layout.js';

/** Credentials of the htpasswd fixture (bcrypt hash in fixtures/htpasswd). */
export const HTPASSWD_USER = { username: 'scanner', password: 'standin-secret' };
const htpasswdFixture = new URL('./fixtures/htpasswd', import.meta.url);

export interface Distribution {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Directory with `ca.crt`, for skopeo's --cert-dir. */
  certDir: string;
  /** PEM file of the CA (what SSL_CERT_FILE should name). */
  caFile: string;
  /** Builds an OCI layout and pushes it with skopeo as `repository:tag`. */
  push(repository: string, tag: string, image?: LayoutImage): Promise<WrittenLayout>;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${stderr || error.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 over TLS signed by the test CA,
 * optionally behind htpasswd basic auth. Resolves once it logs that it listens.
 */
export async function startDistribution(options: { auth?: boolean } = {}): Promise<Distribution> {
  const dir = tempDir('portcullis-distribution-');
  const tls = testTls();
  const port = await freePort();
  const certDir = join(dir.path, 'certs');
  mkdirSync(certDir);
  writeFileSync(join(certDir, 'ca.crt'), tls.ca.cert);
  writeFileSync(join(dir.path, 'tls.crt'), tls.serving.cert);
  writeFileSync(join(dir.path, 'tls.key'), tls.serving.key);
  if (options.auth) copyFileSync(htpasswdFixture, join(dir.path, 'htpasswd'));
  const config = [
    'version: 0.1',
    'log: { level: info, formatter: text }',
    `storage: { filesystem: { rootdirectory: ${join(dir.path, 'data')} }, delete: { enabled: true } }`,
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  tls: { certificate: ${join(dir.path, 'tls.crt')}, key: ${join(dir.path, 'tls.key')} }`,
    ...(options.auth ? [`auth: { htpasswd: { realm: portcullis-test, path: ${join(dir.path, 'htpasswd')} } }`] : []),
    '',
  ].join('\n');
  writeFileSync(join(dir.path, 'config.yml'), config);

  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir.path, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`docker-registry exited with ${code}: ${output}`)));
  });
  const host = `127.0.0.1:${port}`;
  let pushes = 0;
  return {
    host,
    certDir,
    caFile: join(certDir, 'ca.crt'),
    async push(repository, tag, image = {}) {
      const layout = writeOciLayout(join(dir.path, `layout-${(pushes += 1)}`), tag, image);
      const creds = options.auth ? ['--dest-creds', `${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`] : [];
      await run('skopeo', ['copy', '--quiet', '--dest-cert-dir', certDir, ...creds, `oci:${layout.dir}:${tag}`, `docker://${host}/${repository}:${tag}`]);
      return layout;
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      dir.remove();
    },
  };
}
