/**
 * A small subset of CEL, enough to evaluate webhook `matchConditions` the way kube-apiserver does
 * for the expressions this project writes. Supported:
 *
 * - literals: 'single' and "double" quoted strings, integers, true, false, null, lists `[a, b]`;
 * - variables `object`, `oldObject`, `request` (and any others handed in), field selection `a.b`,
 *   index `a[0]` / `a['key']`, `has(a.b)`;
 * - operators `!`, `==`, `!=`, `in` (list membership, map key), `&&`, `||`, parentheses;
 * - CEL's error semantics: selecting a missing field or a field of null is an error; `||` and `&&`
 *   are commutative about errors (`true || error` is true, `false && error` is false); a result
 *   that is not a boolean is an error.
 *
 * Not supported (and reported as an error when met): arithmetic, comparisons `<` `>`, the ternary
 * operator, macros (`all`, `exists`, …), function calls other than `has`, `authorizer`.
 */

export class CelError extends Error {}

type Value = unknown;
type Token = { kind: 'op' | 'ident' | 'string' | 'number'; text: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < source.length) {
    const rest = source.slice(at);
    const space = /^\s+/.exec(rest);
    if (space) {
      at += space[0].length;
      continue;
    }
    const op = /^(==|!=|&&|\|\||[!.()[\],])/.exec(rest);
    if (op) {
      tokens.push({ kind: 'op', text: op[0] });
      at += op[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0] });
      at += ident[0].length;
      continue;
    }
    const number = /^[0-9]+/.exec(rest);
    if (number) {
      tokens.push({ kind: 'number', text: number[0] });
      at += number[0].length;
      continue;
    }
    const quote = rest[0];
    if (quote === "'" || quote === '"') {
      const end = rest.indexOf(quote, 1);
      if (end < 0) throw new CelError(`unterminated string at ${at}`);
      tokens.push({ kind: 'string', text: rest.slice(1, end) });
      at += end + 1;
      continue;
    }
    throw new CelError(`unsupported syntax at ${at}: ${JSON.stringify(rest.slice(0, 10))}`);
  }
  return tokens;
}

/** A parsed expression: evaluation returns a value or throws CelError (a CEL runtime error). */
type Node = (vars: Readonly<Record<string, Value>>) => Value;

function isMap(value: Value): value is Record<string, Value> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  if (isMap(a) && isMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
  }
  return false;
}

function select(target: Value, key: Value): Value {
  if (Array.isArray(target) && typeof key === 'number') {
    if (key < 0 || key >= target.length) throw new CelError(`index out of range: ${key}`);
    return target[key];
  }
  if (isMap(target) && typeof key === 'string') {
    if (!Object.hasOwn(target, key)) throw new CelError(`no such key: ${key}`);
    return target[key];
  }
  throw new CelError(`cannot select ${JSON.stringify(key)} from ${target === null ? 'null' : typeof target}`);
}

function truth(value: Value): boolean {
  if (typeof value !== 'boolean') throw new CelError(`expected a bool, got ${value === null ? 'null' : typeof value}`);
  return value;
}

class Parser {
  #at = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or();
    if (this.#at < this.tokens.length) throw new CelError(`unexpected "${this.tokens[this.#at]?.text}"`);
    return node;
  }

  private peek(text?: string): boolean {
    const token = this.tokens[this.#at];
    return token !== undefined && (text === undefined || (token.text === text && token.kind !== 'string'));
  }

  private expect(text: string): void {
    if (!this.peek(text)) throw new CelError(`expected "${text}", got ${this.tokens[this.#at]?.text ?? 'end of expression'}`);
    this.#at += 1;
  }

  private or(): Node {
    let left = this.and();
    while (this.peek('||')) {
      this.#at += 1;
      const [a, b] = [left, this.and()];
      left = (vars) => {
        const results = [a, b].map((node) => attempt(() => truth(node(vars))));
        if (results.some((result) => result.value === true)) return true;
        const failed = results.find((result) => result.error);
        if (failed?.error) throw failed.error;
        return false;
      };
    }
    return left;
  }

  private and(): Node {
    let left = this.relation();
    while (this.peek('&&')) {
      this.#at += 1;
      const [a, b] = [left, this.relation()];
      left = (vars) => {
        const results = [a, b].map((node) => attempt(() => truth(node(vars))));
        if (results.some((result) => result.value === false)) return false;
        const failed = results.find((result) => result.error);
        if (failed?.error) throw failed.error;
        return true;
      };
    }
    return left;
  }

  private relation(): Node {
    const left = this.unary();
    for (const op of ['==', '!=', 'in'] as const) {
      if (!this.peek(op)) continue;
      this.#at += 1;
      const right = this.unary();
      if (op === '==') return (vars) => deepEqual(left(vars), right(vars));
      if (op === '!=') return (vars) => !deepEqual(left(vars), right(vars));
      return (vars) => {
        const [item, collection] = [left(vars), right(vars)];
        if (Array.isArray(collection)) return collection.some((member) => deepEqual(member, item));
        if (isMap(collection) && typeof item === 'string') return Object.hasOwn(collection, item);
        throw new CelError('"in" needs a list or a map on its right');
      };
    }
    return left;
  }

  private unary(): Node {
    if (this.peek('!')) {
      this.#at += 1;
      const operand = this.unary();
      return (vars) => !truth(operand(vars));
    }
    return this.member();
  }

  private member(): Node {
    let node = this.primary();
    for (;;) {
      if (this.peek('.')) {
        this.#at += 1;
        const name = this.tokens[this.#at];
        if (name?.kind !== 'ident') throw new CelError('expected a field name after "."');
        this.#at += 1;
        const target = node;
        node = (vars) => select(target(vars), name.text);
      } else if (this.peek('[')) {
        this.#at += 1;
        const index = this.or();
        this.expect(']');
        const target = node;
        node = (vars) => select(target(vars), index(vars));
      } else {
        return node;
      }
    }
  }

  private primary(): Node {
    const token = this.tokens[this.#at];
    if (!token) throw new CelError('unexpected end of expression');
    this.#at += 1;
    if (token.kind === 'string') return () => token.text;
    if (token.kind === 'number') return () => Number(token.text);
    if (token.text === '(') {
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    if (token.text === '[') {
      const items: Node[] = [];
      while (!this.peek(']')) {
        items.push(this.or());
        if (!this.peek(']')) this.expect(',');
      }
      this.#at += 1;
      return (vars) => items.map((item) => item(vars));
    }
    if (token.kind === 'ident') {
      if (token.text === 'true') return () => true;
      if (token.text === 'false') return () => false;
      if (token.text === 'null') return () => null;
      if (token.text === 'has') return this.has();
      if (this.peek('(')) throw new CelError(`function ${token.text}() is not supported by this CEL subset`);
      return (vars) => {
        if (!Object.hasOwn(vars, token.text)) throw new CelError(`undeclared reference to '${token.text}'`);
        return vars[token.text];
      };
    }
    throw new CelError(`unexpected "${token.text}"`);
  }

  private has(): Node {
    this.expect('(');
    const start = this.#at;
    this.member();
    this.expect(')');
    // has(a.b.c): a.b must exist; true when it is a map with key c.
    const selected = this.tokens.slice(start, this.#at - 1);
    const last = selected[selected.length - 1];
    if (selected.length < 3 || selected[selected.length - 2]?.text !== '.' || last?.kind !== 'ident') {
      throw new CelError('has() needs a field selection such as has(object.metadata.labels)');
    }
    const parent = new Parser(selected.slice(0, -2)).parse();
    return (vars) => {
      const value = parent(vars);
      return isMap(value) && Object.hasOwn(value, last.text);
    };
  }
}

function attempt(run: () => boolean): { value?: boolean; error?: CelError } {
  try {
    return { value: run() };
  } catch (error) {
    if (error instanceof CelError) return { error };
    throw error;
  }
}

/** Compiles `expression`; throws CelError for syntax outside the subset. */
export function compileCel(expression: string): (vars: Readonly<Record<string, Value>>) => boolean {
  const node = new Parser(tokenize(expression)).parse();
  return (vars) => truth(node(vars));
}
