import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Paths pino removes before a line is written. Anything that can carry a credential is listed here;
 * src/log/logger.test.ts proves each one is censored.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'authorization',
  'password',
  'secret',
  'token',
  'privateKey',
  'adminPassword',
  '*.password',
  '*.secret',
  '*.token',
  '*.privateKey',
  '*.adminPassword',
  '*.*.password',
  '*.*.secret',
  '*.*.token',
  '*.*.privateKey',
  '*.*.adminPassword',
  'env.TRIVY_PASSWORD',
  'env.TRIVY_REGISTRY_TOKEN',
];

export interface LoggerConfig {
  level: LogLevel;
  /** Service name written on every line (`portcullis` unless a role sets its own). */
  name?: string;
}

/** Builds the one root logger. Tests pass a destination stream to read what was written. */
export function createLogger(config: LoggerConfig, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name: config.name ?? 'portcullis',
    level: config.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing; for unit tests and offline CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
