import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import pg from 'pg';
import { tempDir } from '../helpers/tmp.js';

/** Where initdb and postgres live: Debian's versioned directory (newest first), else /usr/local/bin. */
function findBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    if (existsSync(`${root}/${version}/bin/postgres`)) return `${root}/${version}/bin`;
  }
  return '/usr/local/bin';
}

const BIN = findBin();

/** Whether a PostgreSQL server can be started here (binaries and an unprivileged `postgres` user). */
export function postgresAvailable(): boolean {
  if (!existsSync(`${BIN}/initdb`) || !existsSync(`${BIN}/postgres`)) return false;
  return spawnSync('id', ['-u', 'postgres']).status === 0 && spawnSync('which', ['runuser']).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface PostgresCluster {
  /** A fresh, empty database; its URL. */
  database(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A throw-away PostgreSQL cluster on 127.0.0.1 (initdb in a temp dir, trust auth, run as the
 * `postgres` user because PostgreSQL refuses root). Resolves once the server logs that it accepts
 * connections.
 */
export async function startPostgres(): Promise<PostgresCluster> {
  const dir = tempDir('portcullis-pg-');
  const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim());
  chownSync(dir.path, uid, gid);
  const data = `${dir.path}/data`;
  const init = spawnSync('runuser', ['-u', 'postgres', '--', `${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const server: ChildProcess = spawn('runuser', ['-u', 'postgres', '--', `${BIN}/postgres`, '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir.path, '-F'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    server.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8');
      if (log.includes('ready to accept connections')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`postgres exited with ${code}: ${log}`)));
  });
  let counter = 0;
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  return {
    async database() {
      counter += 1;
      const name = `audit_test_${counter}`;
      await admin.query(`create database ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await admin.end();
      const exited = new Promise<void>((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', () => resolve())));
      // runuser does not pass signals on: stop the server itself (fast shutdown).
      spawnSync('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, 'stop', '-D', data, '-m', 'fast', '-w'], { encoding: 'utf8' });
      await exited;
      dir.remove();
    },
  };
}
