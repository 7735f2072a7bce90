import { describe, expect, it } from 'vitest';
import { runProcess } from './process.js';

describe('runProcess', () => {
  it('answers with the exit code and the output of the child', async () => {
    const result = await runProcess({ command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'], env: { PATH: process.env.PATH }, timeoutMs: 10_000 });
    expect(result).toMatchObject({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  it('kills the child at once when the signal was aborted before the spawn, instead of waiting for the timeout', async () => {
    const controller = new AbortController();
    controller.abort();
    const started = performance.now();
    const result = await runProcess({ command: 'sleep', args: ['30'], env: { PATH: process.env.PATH }, timeoutMs: 60_000, signal: controller.signal });
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL', timedOut: false });
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
