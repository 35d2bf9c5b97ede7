export type BreakerState = "closed" | "open" | "half_open";

export const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** Thrown without calling the dependency while the breaker is open. */
export class BreakerOpenError extends Error {
  readonly code = "EOPENBREAKER";
  constructor(name: string) {
    super(`${name} circuit breaker is open`);
  }
}

export interface BreakerOptions {
  /** Failures in a row that open the breaker. */
  failures: number;
  /** How long it stays open before one probe goes through (half-open). */
  resetMs: number;
  /** Which errors count against the dependency (bad data is not its fault). Default: all. */
  isFailure?: (err: unknown) => boolean;
  now?: () => number;
}

/**
 * A circuit breaker around calls to one dependency (Kinesis, ClickHouse): `failures` failures
 * in a row open it, and then calls are refused at once (no hammering) for `resetMs`; the next
 * call after that is a probe (half-open: only one at a time) that closes it on success or
 * opens it again on failure. (Written here rather than taken from opossum, whose rolling
 * error percentage lets earlier successes keep a dead dependency "closed" for many seconds.)
 */
export class Breaker<A extends unknown[], R> {
  state: BreakerState = "closed";
  private consecutive = 0;
  private openUntil = 0;
  private probing = false;
  private listeners: ((s: BreakerState) => void)[] = [];
  private readonly now: () => number;

  constructor(
    readonly name: string,
    private action: (...args: A) => Promise<R>,
    private opts: BreakerOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  onChange(listener: (s: BreakerState) => void) {
    this.listeners.push(listener);
  }

  private set(state: BreakerState) {
    if (state === this.state) return;
    this.state = state;
    for (const l of this.listeners) l(state);
  }

  async fire(...args: A): Promise<R> {
    if (this.state === "open") {
      if (this.now() < this.openUntil) throw new BreakerOpenError(this.name);
      this.set("half_open");
    }
    if (this.state === "half_open") {
      if (this.probing) throw new BreakerOpenError(this.name);
      this.probing = true;
    }
    try {
      const result = await this.action(...args);
      this.consecutive = 0;
      this.set("closed");
      return result;
    } catch (err) {
      if (this.opts.isFailure?.(err) ?? true) {
        this.consecutive++;
        if (this.state === "half_open" || this.consecutive >= this.opts.failures) {
          this.openUntil = this.now() + this.opts.resetMs;
          this.set("open");
        }
      }
      throw err;
    } finally {
      this.probing = false;
    }
  }
}

export const isBreakerOpen = (err: unknown) => err instanceof BreakerOpenError;
