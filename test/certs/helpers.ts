import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/log/logger.js';

/** The certs config slice of a test: files in `dir`, short lifetimes so that the clock can stay in the past. */
export function certsConfig(dir: string, overrides: Partial<Config['certs']> = {}): Config['certs'] {
  return { ...defaultConfig(dir).certs, dir, ...overrides };
}

/** A logger whose lines a test can read. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug' }, stream), lines: () => lines };
}

/** A mutable clock for `now` deps. */
export function testClock(start: Date): { now: () => Date; set(date: Date): void } {
  let current = start;
  return { now: () => current, set: (date) => (current = date) };
}

export interface Handshake {
  ok: boolean;
  /** The serving certificate's SHA-256 fingerprint when the handshake succeeded. */
  fingerprint?: string;
  error?: string;
}

/** Opens a NEW TLS connection to 127.0.0.1:port trusting only `ca` and reports the outcome. */
export function handshake(port: number, ca: string, servername = 'localhost'): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername });
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve({ ok: true, fingerprint });
    });
    socket.once('error', (error) => resolve({ ok: false, error: error.message }));
  });
}
