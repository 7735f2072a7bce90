import { spawn } from 'node:child_process';

/**
 * The seam around child processes: the Trivy runner never calls `spawn` itself, so tests hand it a
 * function that answers at once (benchmarks, queue tests) or the real one with a stand-in on PATH.
 */
export interface ProcessRequest {
  command: string;
  args: readonly string[];
  /** The whole environment of the child (nothing is inherited implicitly). */
  env: Readonly<Record<string, string | undefined>>;
  /** Kill the whole process tree after this long; the result then has `timedOut: true`. */
  timeoutMs: number;
  /** Aborting kills the process tree too (used when the scanner closes). */
  signal?: AbortSignal;
}

export interface ProcessResult {
  /** Exit code; null when the process was killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The child's pid (for tests that check the tree is gone). */
  pid?: number;
}

/** Rejects only when the command cannot be started (ENOENT, EACCES): `error.code` says which. */
export type RunProcess = (request: ProcessRequest) => Promise<ProcessResult>;

const MAX_OUTPUT = 64 * 1024 * 1024;

/**
 * Spawns the command in its own process group (detached) so that a timeout can kill the whole
 * tree with `process.kill(-pid)`: Trivy itself starts no children, but wrappers (`sh -c`, a
 * stand-in, a container shim) do, and a surviving grandchild would hold the cache lock.
 */
export const runProcess: RunProcess = (request) =>
  new Promise((resolve, reject) => {
    const child = spawn(request.command, [...request.args], {
      env: request.env as NodeJS.ProcessEnv,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let settled = false;

    const killTree = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (error) {
        // ESRCH: the group is already gone, which is what we wanted.
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, request.timeoutMs);
    const onAbort = () => killTree();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    // An 'abort' event fires only once: a signal aborted before the spawn (the scanner closed while
    // the job fetched its credential) would otherwise let the child run until its timeout.
    if (request.signal?.aborted) killTree();

    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT) {
        killTree();
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));

    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      // The leader may exit while a grandchild lives on in its group: never leave one behind.
      killTree();
      const result: ProcessResult = {
        exitCode,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
      };
      if (child.pid !== undefined) result.pid = child.pid;
      resolve(result);
    });
  });
