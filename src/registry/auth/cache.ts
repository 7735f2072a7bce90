import { LRUCache } from 'lru-cache';

/**
 * The identity model is read on every registry request (who is this, which project, which role)
 * and written rarely. Reads are cached for a few seconds; every write in this process bumps the
 * generation, which makes all cached reads stale at once, so a change made here is seen at once
 * here, and by other replicas sharing the database within CACHE_TTL_MS.
 */
export const CACHE_TTL_MS = 5000;

export class Generation {
  private current = 0;

  get value(): number {
    return this.current;
  }

  /** Call after every write to users, projects, members or robots. */
  bump(): void {
    this.current += 1;
  }
}

/** A bounded, short-lived cache whose entries die with the generation they were read in. */
export class ReadCache<V> {
  private readonly entries: LRUCache<string, { value: V; generation: number }>;

  constructor(
    private readonly generation: Generation,
    max = 10_000,
  ) {
    this.entries = new LRUCache({ max, ttl: CACHE_TTL_MS });
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.generation === this.generation.value) return hit.value;
    const generation = this.generation.value;
    const value = await load();
    this.entries.set(key, { value, generation });
    return value;
  }
}
