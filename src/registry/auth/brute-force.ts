import { LRUCache } from 'lru-cache';
import type { Clock, Sleep } from './clock.js';

export interface BruteForceOptions {
  /** Delay after the first failure; doubled for each further one. */
  baseDelayMs: number;
  /** The delay never exceeds this. */
  maxDelayMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
}

export const DEFAULT_BRUTE_FORCE: BruteForceOptions = { baseDelayMs: 200, maxDelayMs: 5000, windowMs: 15 * 60_000 };

interface Failures {
  count: number;
  last: number;
}

/**
 * Slows down password guessing. Every failed login waits before its 401: base × 2^(n−1) up to the
 * cap, where n counts the recent failures for the user name or for the client address, whichever
 * is higher. A success clears the user's count (not the address's: one right password must not
 * reset a guesser's address). Keys are kept in a bounded LRU so that a spray of names cannot
 * exhaust memory.
 */
export class BruteForceGuard {
  private readonly failures = new LRUCache<string, Failures>({ max: 50_000 });

  constructor(
    private readonly options: BruteForceOptions,
    private readonly clock: Clock,
    private readonly sleep: Sleep,
  ) {}

  /** Records a failure for `username` (and `ip` when known) and waits the resulting delay. */
  async fail(username: string, ip: string | undefined): Promise<number> {
    const counts = [this.bump(`u:${username}`), ip === undefined ? 0 : this.bump(`a:${ip}`)];
    const n = Math.max(...counts);
    const delay = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(n - 1, 30));
    if (delay > 0) await this.sleep(delay);
    return delay;
  }

  succeed(username: string): void {
    this.failures.delete(`u:${username}`);
  }

  private bump(key: string): number {
    const now = this.clock.now();
    const previous = this.failures.get(key);
    const count = previous && now - previous.last < this.options.windowMs ? previous.count + 1 : 1;
    this.failures.set(key, { count, last: now });
    return count;
  }
}
