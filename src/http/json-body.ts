import secureJson from 'secure-json-parse';
import { PortcullisError } from '../errors.js';

const POISON = { protoAction: 'error', constructorAction: 'error' } as const;

/**
 * Parses a JSON request body, refusing what fastify's default parser refuses (an empty body, bad
 * JSON, keys named `__proto__` or `constructor` that could poison prototypes if the value were
 * ever merged into another object) but with the parser's own message, which says where the JSON
 * broke. The prototype scan walks the parsed value only when the text could hold such a key:
 * spelled out, or written with `\u` escapes. Most bodies have neither, and the scan (two regular
 * expressions over the whole text in fastify's parser) was a visible part of the admission path.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new PortcullisError('REQUEST_MALFORMED', 'the body is empty; send a JSON document');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PortcullisError('REQUEST_MALFORMED', `body is not valid JSON: ${(error as Error).message}`);
  }
  if (value !== null && typeof value === 'object' && (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u'))) {
    try {
      secureJson.scan(value, POISON);
    } catch (error) {
      throw new PortcullisError('REQUEST_MALFORMED', `body is not acceptable JSON: ${(error as Error).message}`);
    }
  }
  return value;
}
