/**
 * Per-key token buckets: a key may burst up to its per-minute allowance and refills
 * continuously. In-process state: with several ingest processes each enforces the limit on
 * the requests it sees (a shared store would be needed for one global limit).
 */
export interface Bucket {
  tokens: number;
  at: number;
}

export function rateLimiter(now: () => number = Date.now, maxKeys = 100_000) {
  const buckets = new Map<number, Bucket>();
  /** Takes one token; returns null when allowed, else the seconds until one is available. */
  return function take(keyId: number, perMinute: number): { remaining: number; retryAfterS: number | null } {
    const t = now();
    const perMs = perMinute / 60_000;
    let b = buckets.get(keyId);
    if (!b) {
      if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!); // oldest first
      b = { tokens: perMinute, at: t };
      buckets.set(keyId, b);
    }
    b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMs);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { remaining: Math.floor(b.tokens), retryAfterS: null };
    }
    return { remaining: 0, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  };
}
export type RateLimiter = ReturnType<typeof rateLimiter>;

/**
 * Failed authentications per client address in fixed one-minute windows: after `perMinute`
 * failures the address is refused until its window ends (retryAfterS says how long). In-process
 * and bounded like the buckets above (oldest address dropped first).
 */
export function failureThrottle(perMinute: number, now: () => number = Date.now, maxAddresses = 100_000) {
  const windows = new Map<string, { count: number; start: number }>();
  const current = (addr: string) => {
    const w = windows.get(addr);
    return w && now() - w.start < 60_000 ? w : undefined;
  };
  return {
    /** null when `addr` may try; else the seconds until its window ends. */
    retryAfterS(addr: string): number | null {
      const w = current(addr);
      return w && w.count >= perMinute ? Math.max(1, Math.ceil((w.start + 60_000 - now()) / 1000)) : null;
    },
    fail(addr: string): void {
      const w = current(addr);
      if (w) return void w.count++;
      windows.delete(addr); // re-inserted last: the map stays ordered by window start
      if (windows.size >= maxAddresses) windows.delete(windows.keys().next().value!);
      windows.set(addr, { count: 1, start: now() });
    },
  };
}
