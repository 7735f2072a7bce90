/**
 * The time budget of one admission request. The AbortSignal (and its timer) is only created when
 * some stage actually waits for I/O: on the warm path (cached verdicts, no Kubernetes calls) a
 * request never pays for it.
 */
export interface Deadline {
  /** Aborts when the budget is spent. */
  readonly signal: AbortSignal;
}

export class RequestDeadline implements Deadline {
  readonly #expiresAt: number;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `budgetMs` from `startedAt` (performance clock; default now). */
  constructor(budgetMs: number, startedAt = performance.now()) {
    this.#expiresAt = startedAt + budgetMs;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      const remaining = this.#expiresAt - performance.now();
      if (remaining <= 0) controller.abort();
      else this.#timer = setTimeout(() => controller.abort(), remaining);
    }
    return this.#controller.signal;
  }

  /** Stops the timer (call when the request is answered). Idempotent. */
  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A deadline that never passes on its own (offline review). */
export function noDeadline(): Deadline {
  const controller = new AbortController();
  return { signal: controller.signal };
}
