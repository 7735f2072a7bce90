/**
 * Readiness is the conjunction of named checks that subsystems register (policy set loaded,
 * serving certificate valid, Trivy database present, …). `/readyz` reports every check with its
 * reason so that an operator sees why a pod is not ready.
 */
export interface CheckResult {
  ok: boolean;
  /** Why the check fails (or a short status when it passes). */
  reason?: string;
}

export type ReadinessCheck = () => CheckResult | Promise<CheckResult>;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>();

  /** Registers (or replaces) the check called `name`. */
  register(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check);
  }

  /** Runs every check; a check that throws counts as failing with the error as its reason. */
  async report(): Promise<ReadinessReport> {
    const checks: Record<string, CheckResult> = {};
    for (const [name, check] of this.#checks) {
      try {
        checks[name] = await check();
      } catch (error) {
        checks[name] = { ok: false, reason: error instanceof Error ? error.message : String(error) };
      }
    }
    return { ready: Object.values(checks).every((result) => result.ok), checks };
  }
}
