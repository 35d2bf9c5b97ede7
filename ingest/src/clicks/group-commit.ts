import type { ClickEvent } from "../../../shared/event.ts";
import { storeClicks } from "./store.ts";
import type { Sql } from "../db/connect.ts";

interface Waiter {
  events: ClickEvent[];
  resolve: (inserted: Set<string>) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for beacons. Every beacon is still answered only after the transaction that
 * holds it committed, but concurrent beacons share transactions: while `maxInFlight`
 * transactions are running, new arrivals queue, and the next transaction takes the whole
 * queue (up to `maxEvents`). At low load a beacon commits alone, with no added wait; under
 * load PostgreSQL does one fsync per group instead of one per click, and the group is one
 * statement (storeClicks).
 *
 * Each transaction in flight runs on a lane, and each lane bumps its own `postgres_clicks`
 * slot, so concurrent flushes never queue on one counter row. Slots 0–15 are the shared ones
 * (counters.ts); a process's lanes sit above them, apart from other processes' by pid.
 */
export function groupCommitter(sql: Sql, { maxInFlight = 4, maxEvents = 2000 } = {}) {
  const queue: Waiter[] = [];
  const base = 16 + (process.pid % 400) * 80;
  const lanes = Array.from({ length: maxInFlight }, (_, i) => base + (i % 80));
  let inFlight = 0;
  const stats = { flushes: 0, events: 0, maxGroup: 0 };

  function pump() {
    while (inFlight < maxInFlight && queue.length) {
      const group: Waiter[] = [];
      let n = 0;
      while (queue.length && (n === 0 || n + queue[0]!.events.length <= maxEvents)) {
        const w = queue.shift()!;
        group.push(w);
        n += w.events.length;
      }
      inFlight++;
      const slot = lanes.pop()!;
      stats.flushes++;
      stats.events += n;
      stats.maxGroup = Math.max(stats.maxGroup, n);
      void commit(group, slot).finally(() => {
        inFlight--;
        lanes.push(slot);
        pump();
      });
    }
  }

  async function commit(group: Waiter[], slot: number) {
    try {
      const inserted = await storeClicks(sql, group.flatMap((w) => w.events), slot);
      // A click_id in two beacons of one group is new for the first of them only.
      for (const w of group) {
        const mine = new Set<string>();
        for (const e of w.events) if (inserted.delete(e.click_id)) mine.add(e.click_id);
        w.resolve(mine);
      }
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }

  /** Resolves, after the commit, with the click_ids of `events` that were new. */
  function store(events: ClickEvent[]): Promise<Set<string>> {
    return new Promise((resolve, reject) => {
      queue.push({ events, resolve, reject });
      pump();
    });
  }
  /** Flushes so far, the clicks they held and the largest (benchmarks and tests read the group size). */
  return Object.assign(store, { stats: () => ({ ...stats }) });
}
