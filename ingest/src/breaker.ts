import CircuitBreaker from "opossum";

export type BreakerState = "closed" | "open" | "half_open";

export const stateOf = (b: CircuitBreaker): BreakerState => (b.opened ? "open" : b.halfOpen ? "half_open" : "closed");

/**
 * A circuit breaker around a call to a dependency (Kinesis, ClickHouse): after `failures`
 * failures within the rolling window it opens and rejects at once (no hammering); after
 * `resetMs` it lets one probe through (half-open) and closes again when that succeeds.
 * `isFailure` decides which errors count: bad data is not the dependency's fault.
 */
export function breaker<A extends unknown[], R>(
  name: string,
  action: (...args: A) => Promise<R>,
  opts: { failures: number; resetMs: number; isFailure?: (err: unknown) => boolean },
): CircuitBreaker<A, R> {
  return new CircuitBreaker(action, {
    name,
    timeout: false, // the clients carry their own timeouts
    resetTimeout: opts.resetMs,
    volumeThreshold: opts.failures,
    errorThresholdPercentage: 50,
    rollingCountTimeout: 10_000,
    errorFilter: opts.isFailure ? (err: unknown) => !opts.isFailure!(err) : undefined,
  });
}

export const isBreakerOpen = (err: unknown) => (err as { code?: string }).code === "EOPENBREAKER";
