import { readFileSync } from "node:fs";
import { parse } from "smol-toml";
import { expect, it } from "vitest";
import { queueOptions, ratelimitOptions, wranglerConfig } from "../edge/miniflare.ts";
import { PASSWORD_WINDOW_S } from "../edge/src/throttle.ts";
import { QUEUE_MAX_RETRIES } from "../shared/event.ts";

interface Queues {
  producers: { binding: string; queue: string }[];
  consumers: { queue: string; max_batch_size: number; max_batch_timeout: number; max_retries: number; retry_delay: number; dead_letter_queue: string }[];
}
type Ratelimits = { name: string; namespace_id: string; simple: { limit: number; period: number } }[];
type Bindings = { name: string; vars: Record<string, string>; kv_namespaces: { binding: string; id: string }[]; queues: Queues; ratelimits: Ratelimits };

const cfg = parse(readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8")) as unknown as Bindings & {
  env: Record<string, Bindings & { routes: unknown[] }>;
  observability?: { enabled: boolean };
};

/** wrangler.toml: environments do not inherit [vars], KV or queue bindings, so each must list them all. */
it("gives every deployment environment the same bindings as the local worker", () => {
  const envInterface = readFileSync(new URL("../edge/src/env.ts", import.meta.url), "utf8");
  for (const name of Object.keys(cfg.vars)) expect(envInterface).toContain(`${name}: string;`);
  for (const p of cfg.queues.producers) expect(envInterface).toContain(`${p.binding}?: Queue`);
  expect(Object.keys(cfg.env).sort()).toEqual(["production", "staging"]);
  for (const [name, env] of Object.entries(cfg.env)) {
    expect(Object.keys(env.vars).sort(), name).toEqual(Object.keys(cfg.vars).sort());
    expect(env.kv_namespaces.map((k) => k.binding), name).toEqual(cfg.kv_namespaces.map((k) => k.binding));
    expect(env.queues?.producers.map((p) => p.binding), name).toEqual(cfg.queues.producers.map((p) => p.binding));
    // The consumer settings are the same everywhere; only the queue names may differ.
    const settings = (q: Queues) => q.consumers.map(({ queue: _q, dead_letter_queue: _d, ...rest }) => rest);
    expect(settings(env.queues), name).toEqual(settings(cfg.queues));
    expect(env.routes.length, name).toBeGreaterThan(0);
  }
});

/** The worker consumes the queue it produces to, and what it cannot deliver ends in a dead-letter queue. */
it("consumes CLICKS_QUEUE in the same worker, with a dead-letter queue, in every environment", () => {
  for (const [name, q] of [["top level", cfg.queues] as const, ...Object.entries(cfg.env).map(([n, e]) => [n, e.queues] as const)]) {
    const clicks = q.producers.find((p) => p.binding === "CLICKS_QUEUE");
    expect(clicks, name).toBeDefined();
    const consumer = q.consumers.find((c) => c.queue === clicks!.queue);
    expect(consumer, name).toBeDefined();
    expect(consumer!.max_batch_size, name).toBeLessThanOrEqual(100); // the platform's limit, and one beacon per batch
    expect(consumer!.max_retries, name).toBeGreaterThanOrEqual(50);
    expect(consumer!.dead_letter_queue, name).toMatch(/dlq/);
    expect(consumer!.dead_letter_queue, name).not.toBe(clicks!.queue);
    // Ingest refuses clicks older than the queue can hold them (shared/event.ts MAX_CLICK_AGE_MS):
    // more retries here would deliver clicks it then refuses.
    expect(consumer!.max_retries, name).toBeLessThanOrEqual(QUEUE_MAX_RETRIES);
    // Clicks ingest refuses as invalid go straight to that dead-letter queue.
    expect(q.producers.find((p) => p.binding === "CLICKS_DLQ")?.queue, name).toBe(consumer!.dead_letter_queue);
  }
  // A queue has one consumer: two environments (the local worker included) sharing a queue would steal each other's clicks.
  const names = [cfg, ...Object.values(cfg.env)].map((e) => e.queues.producers.find((p) => p.binding === "CLICKS_QUEUE")!.queue);
  expect(new Set(names).size).toBe(names.length);
});

/** A bare `wrangler deploy` uses the top level: it must not be production's worker, queues or KV. */
it("keeps the top level local: its own worker name, queues and KV id; production is an explicit environment", () => {
  const prod = cfg.env.production!;
  expect(cfg.name).toBe("linkflow-edge-local");
  expect(prod.name).toBe("linkflow-edge");
  expect(cfg.vars.INGEST_URL).toMatch(/^http:\/\/127\.0\.0\.1:/);
  const queues = (b: Bindings) => b.queues.producers.map((p) => p.queue);
  expect(queues(prod)).toEqual(["linkflow-clicks", "linkflow-clicks-dlq"]);
  for (const [name, env] of Object.entries(cfg.env)) {
    expect(queues(env).filter((q) => queues(cfg).includes(q)), name).toEqual([]);
    expect(env.kv_namespaces[0]!.id, name).not.toBe(cfg.kv_namespaces[0]!.id);
  }
  // Workers Logs on; environments inherit [observability].
  expect(cfg.observability).toEqual({ enabled: true });
});

it("maps the queue tables to Miniflare's options (the local queues)", () => {
  const o = queueOptions(wranglerConfig());
  expect(o.queueProducers).toEqual({ CLICKS_QUEUE: { queueName: "linkflow-clicks-local" }, CLICKS_DLQ: { queueName: "linkflow-clicks-dlq-local" } });
  expect(o.queueConsumers).toEqual({
    "linkflow-clicks-local": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 100, retryDelay: 5, deadLetterQueue: "linkflow-clicks-dlq-local" },
    // The dead-letter queue is consumed (replayed) by the same worker; Miniflare drops what reaches a queue without a consumer.
    "linkflow-clicks-dlq-local": { maxBatchSize: 100, maxBatchTimeout: 5, maxRetries: 100, retryDelay: 60, deadLetterQueue: undefined },
  });
});

/** Password guessing is throttled everywhere (edge/src/throttle.ts), each environment with its own counters. */
it("binds PASSWORD_LIMITER in every environment, with the window the 429's Retry-After states", () => {
  const envInterface = readFileSync(new URL("../edge/src/env.ts", import.meta.url), "utf8");
  expect(envInterface).toContain("PASSWORD_LIMITER?: RateLimit;");
  const all = [["top level", cfg.ratelimits] as const, ...Object.entries(cfg.env).map(([n, e]) => [n, e.ratelimits] as const)];
  for (const [name, r] of all) {
    const limiter = r?.find((l) => l.name === "PASSWORD_LIMITER");
    expect(limiter, name).toBeDefined();
    expect(limiter!.simple, name).toEqual({ limit: 10, period: PASSWORD_WINDOW_S });
    expect(limiter!.namespace_id, name).toMatch(/^[1-9]\d*$/);
  }
  const ids = all.map(([, r]) => r.find((l) => l.name === "PASSWORD_LIMITER")!.namespace_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ratelimitOptions(wranglerConfig())).toEqual({ ratelimits: { PASSWORD_LIMITER: { simple: { limit: 10, period: 60 } } } });
});
