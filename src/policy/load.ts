/**
 * Reads policy documents (YAML, several per file) and turns them into a PolicySet, or into a list
 * of problems that name file, line, column and field. Nothing here watches or caches files: the
 * store (store.ts) decides when to load, this module only answers "what does this text mean".
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Document } from 'yaml';
import { PortcullisError, describeError } from '../errors.js';
import { compilePolicySet, type PolicySet } from './compile.js';
import type { SourcedDocument } from './documents.js';
import { lintDocuments } from './lint.js';
import { validatePolicyDocument, type SchemaIssue } from './schema.js';

export interface PolicyProblem {
  file: string;
  /** 1-based; 0 when the problem concerns the whole file (unreadable, missing directory). */
  line: number;
  column: number;
  /** JSON pointer into the document (`/spec/rules/vulnerabilities/maxSeverity`); empty for the whole document. */
  pointer: string;
  message: string;
  severity: 'error' | 'warning';
}

export type PolicyLoadResult =
  | { ok: true; set: PolicySet; warnings: PolicyProblem[] }
  | { ok: false; problems: PolicyProblem[] };

export interface LoadOptions {
  /** The instant expiry warnings are computed against (exceptions expiring within 14 days). */
  now?: Date;
}

/** `policies/x.yaml:12:7 /spec/rules/0/maxSeverity: must be one of …` — one line. */
export function formatProblem(problem: PolicyProblem): string {
  const where = problem.line > 0 ? `${problem.file}:${problem.line}:${problem.column}` : problem.file;
  const pointer = problem.pointer === '' ? '' : ` ${problem.pointer}`;
  const prefix = problem.severity === 'warning' ? 'warning: ' : '';
  return `${where}${pointer}: ${prefix}${problem.message}`;
}

/**
 * One error for callers that must throw (a CLI given a broken directory): POLICY_PARSE_ERROR when
 * every problem is YAML syntax, POLICY_INVALID otherwise; the message has one line per problem and
 * `detail.problems` the problems themselves.
 */
export function policyError(problems: readonly PolicyProblem[]): PortcullisError {
  const errors = problems.filter((problem) => problem.severity === 'error');
  const code = errors.length > 0 && errors.every((problem) => problem.message.startsWith('YAML: ')) ? 'POLICY_PARSE_ERROR' : 'POLICY_INVALID';
  return new PortcullisError(code, `invalid policies:\n  ${errors.map(formatProblem).join('\n  ')}`, { detail: { problems: [...problems] } });
}

/** True for the file names a policy directory is made of. Hidden files are skipped (editors, ConfigMap internals). */
export function isPolicyFileName(name: string): boolean {
  return !name.startsWith('.') && /\.ya?ml$/i.test(name);
}

/**
 * Loads every `*.yaml` / `*.yml` file directly in `dir` (not recursive), in name order.
 * Never throws: an unreadable directory or file is a problem in the result.
 */
export async function loadPolicyDirectory(dir: string, options: LoadOptions = {}): Promise<PolicyLoadResult> {
  let names: string[];
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return failure(dir, `is not a directory`);
    names = (await readdir(dir)).filter(isPolicyFileName).sort();
  } catch (error) {
    return failure(dir, `cannot read the policy directory: ${describeError(error)}`);
  }
  const files: { file: string; text: string }[] = [];
  const problems: PolicyProblem[] = [];
  for (const name of names) {
    const file = join(dir, name);
    try {
      const info = await stat(file);
      if (!info.isFile()) continue;
      files.push({ file, text: await readFile(file, 'utf8') });
    } catch (error) {
      problems.push(fileProblem(file, `cannot read: ${describeError(error)}`));
    }
  }
  const result = parsePolicyFiles(files, options);
  if (problems.length === 0 && result.ok) {
    const { set } = result;
    if (set.imagePolicies.length + set.pullSecretPolicies.length + set.exceptions.length === 0) {
      return { ...result, warnings: [...result.warnings, { ...fileProblem(dir, 'no policy documents found: nothing is enforced'), severity: 'warning' }] };
    }
    return result;
  }
  if (problems.length === 0) return result;
  return { ok: false, problems: [...problems, ...(result.ok ? [] : result.problems)] };
}

/** Parses one file's text (in memory) into a PolicySet. */
export function parsePolicyDocuments(text: string, file: string, options: LoadOptions = {}): PolicyLoadResult {
  return parsePolicyFiles([{ file, text }], options);
}

/** Parses several files as one set: names must be unique across all of them. */
export function parsePolicyFiles(files: readonly { file: string; text: string }[], options: LoadOptions = {}): PolicyLoadResult {
  const documents: SourcedDocument[] = [];
  const problems: PolicyProblem[] = [];
  for (const { file, text } of files) {
    const parsed = parseFile(text, file);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  }
  const lint = lintDocuments(documents, options.now ?? new Date());
  problems.push(...lint.filter((problem) => problem.severity === 'error'));
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    set: compilePolicySet(documents, files.map((entry) => entry.file)),
    warnings: lint.filter((problem) => problem.severity === 'warning'),
  };
}

function parseFile(text: string, file: string): { documents: SourcedDocument[]; problems: PolicyProblem[] } {
  const lineCounter = new LineCounter();
  const documents: SourcedDocument[] = [];
  const problems: PolicyProblem[] = [];
  const position = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlDocuments: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  yamlDocuments.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        problems.push({ file, ...position(error.pos[0]), pointer: '', message: `YAML: ${firstLine(error.message)}`, severity: 'error' });
      }
      return;
    }
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      problems.push({ file, ...position(doc.range[0]), pointer: '', message: `YAML: ${describeError(error)}`, severity: 'error' });
      return;
    }
    const validation = validatePolicyDocument(value);
    if (validation.ok) {
      const start = position(doc.contents.range?.[0] ?? doc.range[0]);
      const locate = (pointer: string) => ({ file, ...position(locateOffset(doc, pointer)) });
      documents.push({ document: validation.document, file, ...start, locate });
      return;
    }
    for (const issue of validation.issues) problems.push(schemaProblem(issue, doc, file, position, index));
  });
  // At one position, the deeper pointer first: an unknown field explains the missing one beside it.
  problems.sort((a, b) => a.line - b.line || a.column - b.column || b.pointer.length - a.pointer.length);
  return { documents, problems };
}

function schemaProblem(
  issue: SchemaIssue,
  doc: Document.Parsed,
  file: string,
  position: (offset: number) => { line: number; column: number },
  index: number,
): PolicyProblem {
  const offset = locateOffset(doc, issue.pointer, issue.key);
  const pointer = issue.key === undefined ? issue.pointer : `${issue.pointer}/${escapePointer(issue.key)}`;
  const prefix = index > 0 && issue.pointer === '' ? `document ${index + 1}: ` : '';
  return { file, ...position(offset), pointer, message: `${prefix}${issue.message}`, severity: 'error' };
}

/**
 * The offset in the source of the node at `pointer` (or of `key` inside it, for unknown fields),
 * falling back to the deepest ancestor that exists (a missing required field points at its parent).
 */
function locateOffset(doc: Document.Parsed, pointer: string, key?: string): number {
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map(unescapePointer);
  if (key !== undefined) segments.push(key);
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? doc.range[0];
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === segment);
      if (!pair) break;
      // For the last segment of an unknown field, point at the key itself (the misspelling).
      const keyNode = isScalar(pair.key) ? pair.key : undefined;
      const valueNode = pair.value;
      if (segment === key && keyNode?.range) return keyNode.range[0];
      const range = isScalar(valueNode) || isMap(valueNode) || isSeq(valueNode) ? valueNode.range : keyNode?.range;
      if (!range) break;
      offset = range[0];
      node = valueNode;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (!(isScalar(item) || isMap(item) || isSeq(item)) || !item.range) break;
      offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function failure(file: string, message: string): PolicyLoadResult {
  return { ok: false, problems: [fileProblem(file, message)] };
}

function fileProblem(file: string, message: string): PolicyProblem {
  return { file, line: 0, column: 0, pointer: '', message, severity: 'error' };
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
