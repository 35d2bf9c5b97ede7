import type { ClickEvent } from "../../shared/event.ts";
import { storeClicks } from "./clicks.ts";
import type { Sql } from "./db.ts";

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
 * load PostgreSQL does one fsync per group instead of one per click.
 */
export function groupCommitter(sql: Sql, { maxInFlight = 4, maxEvents = 2000 } = {}) {
  let queue: Waiter[] = [];
  let inFlight = 0;

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
      void commit(group).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function commit(group: Waiter[]) {
    try {
      const inserted = await storeClicks(sql, group.flatMap((w) => w.events));
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
  return function store(events: ClickEvent[]): Promise<Set<string>> {
    return new Promise((resolve, reject) => {
      queue.push({ events, resolve, reject });
      pump();
    });
  };
}
