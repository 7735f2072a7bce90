import ipaddr from 'ipaddr.js';
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
    const counts = [this.bump(`u:${username}`), ip === undefined ? 0 : this.bump(`a:${addressKey(ip)}`)];
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

/** The one key every address that cannot be read is counted under (a proxy forwarding garbage). */
const UNREADABLE = 'unreadable';

/**
 * What failures from `ip` are counted under: an IPv4 address itself (also written IPv4-mapped,
 * `::ffff:192.0.2.1`, or NAT64, `64:ff9b::192.0.2.1`), and for IPv6 its /64 network, which one
 * client usually holds whole and could otherwise step through address by address. A port that a
 * proxy appended (`203.0.113.9:51234`, `[2001:db8::1]:443`) is dropped, so that each connection
 * does not get a counter of its own; text that is no address at all shares one key.
 */
export function addressKey(ip: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(ip);
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(ip);
  const text = bracketed?.[1] ?? v4WithPort?.[1] ?? ip;
  if (!ipaddr.isValid(text)) return UNREADABLE;
  const address = ipaddr.process(text);
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts;
  if (address.range() === 'rfc6052') {
    const [high = 0, low = 0] = parts.slice(6);
    return ipaddr.fromByteArray([high >> 8, high & 0xff, low >> 8, low & 0xff]).toString();
  }
  return `${parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}
