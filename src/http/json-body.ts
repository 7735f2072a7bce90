import secureJson from 'secure-json-parse';
import { PortcullisError } from '../errors.js';

const POISON = { protoAction: 'error', constructorAction: 'error' } as const;

/**
 * Parses a JSON request body, refusing what fastify's default parser refuses (an empty body, bad
 * JSON, keys named `__proto__` or `constructor` that could poison prototypes if the value were
 * ever merged into another object), saying where the JSON broke when the parser tells. The
 * message never quotes the body: it is answered and logged, and a body may carry a password.
 * The prototype scan walks the parsed value only when the text could hold such a key:
 * spelled out, or written with `\u` escapes. Most bodies have neither, and the scan (two regular
 * expressions over the whole text in fastify's parser) was a visible part of the admission path.
 */
export function parseJsonBody(body: string): unknown {
  // A leading byte-order mark is allowed (as fastify's parser allowed it); JSON.parse refuses it.
  const text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  if (text.length === 0) throw new PortcullisError('REQUEST_MALFORMED', 'the body is empty; send a JSON document');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PortcullisError('REQUEST_MALFORMED', `body is not valid JSON: ${describeSyntaxError(text, (error as Error).message)}`);
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

/**
 * What V8 says went wrong, without the excerpt of the text it quotes: `expected ':' after
 * property name at line 1, column 6`, `it ends too early`, `unexpected character at line 3`.
 */
function describeSyntaxError(text: string, message: string): string {
  if (message.startsWith('Unexpected end of JSON input')) return 'it ends too early';
  // "Unexpected token 'x', "…excerpt…" is not valid JSON": no position, and an excerpt to drop.
  if (message.startsWith('Unexpected token')) return 'unexpected character';
  const located = /^([^"]*?)(?: in JSON)? at position (\d+)/.exec(message);
  if (located) return `${lowerFirst(located[1] ?? 'syntax error')} at ${lineAndColumn(text, Number(located[2]))}`;
  return 'syntax error';
}

function lineAndColumn(text: string, position: number): string {
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < position; index = text.indexOf('\n', index + 1)) {
    line += 1;
    lineStart = index + 1;
  }
  return `line ${line}, column ${position - lineStart + 1}`;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
