/**
 * Runs the edge worker in workerd (through Miniflare) from Node: `npm start`, the tests and the
 * benchmarks use this, with the bindings wrangler.toml declares. It bundles edge/src with
 * esbuild (what wrangler does too) and gives workerd an explicit `cf` object, so nothing
 * tries to fetch Cloudflare's request metadata from the network.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, type BuildOptions } from "esbuild";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { parse } from "smol-toml";
import { secretProblem } from "../shared/keys.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

interface WranglerToml {
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  kv_namespaces?: { binding: string }[];
  queues?: { producers?: QueueProducerToml[]; consumers?: QueueConsumerToml[] };
  ratelimits?: { name: string; namespace_id: string; simple: { limit: number; period: number } }[];
  vars?: Record<string, string>;
}
interface QueueProducerToml {
  binding: string;
  queue: string;
  delivery_delay?: number;
}
interface QueueConsumerToml {
  queue: string;
  max_batch_size?: number;
  max_batch_timeout?: number;
  max_retries?: number;
  retry_delay?: number;
  dead_letter_queue?: string;
}

type QueueConsumerOptions = Exclude<WorkerOptions["queueConsumers"], string[] | undefined>[string];

/** wrangler.toml's queue tables as Miniflare's options (same meaning, camelCase names). */
export function queueOptions(cfg: WranglerToml): Pick<WorkerOptions, "queueProducers" | "queueConsumers"> {
  const producers = cfg.queues?.producers ?? [];
  const consumers = cfg.queues?.consumers ?? [];
  return {
    queueProducers: Object.fromEntries(
      producers.map((p) => [p.binding, { queueName: p.queue, ...(p.delivery_delay !== undefined && { deliveryDelay: p.delivery_delay }) }]),
    ),
    queueConsumers: Object.fromEntries(
      consumers.map((c): [string, QueueConsumerOptions] => [
        c.queue,
        {
          maxBatchSize: c.max_batch_size,
          maxBatchTimeout: c.max_batch_timeout,
          maxRetries: c.max_retries,
          retryDelay: c.retry_delay,
          deadLetterQueue: c.dead_letter_queue,
        },
      ]),
    ),
  };
}

/** wrangler.toml's `[[ratelimits]]` as Miniflare's option (in memory, fixed windows of `period` s). */
export function ratelimitOptions(cfg: WranglerToml): Pick<WorkerOptions, "ratelimits"> {
  type Simple = NonNullable<WorkerOptions["ratelimits"]>[string]["simple"];
  return { ratelimits: Object.fromEntries((cfg.ratelimits ?? []).map((r) => [r.name, { simple: r.simple as Simple }])) };
}

export const wranglerConfig = (): WranglerToml => parse(readFileSync(root + "wrangler.toml", "utf8")) as unknown as WranglerToml;

/** What request.cf holds in local runs: a plausible visitor, clearly marked as dev. */
export const DEV_CF = {
  country: "US",
  region: "California",
  regionCode: "CA",
  city: "San Francisco",
  postalCode: "94107",
  continent: "NA",
  latitude: "37.78",
  longitude: "-122.39",
  timezone: "America/Los_Angeles",
  colo: "DEV",
  asn: 13335,
};

export async function bundleWorker(entry = root + wranglerConfig().main): Promise<string> {
  const out = await build({ ...workerBuildOptions(entry), minify: false, write: false, logLevel: "silent" });
  return out.outputFiles[0]!.text;
}

/** How the worker is bundled; scripts/edge-size.ts and the size budget test minify it, as `wrangler deploy` does. */
export const workerBuildOptions = (entry = root + wranglerConfig().main) =>
  ({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    target: "es2022",
  }) satisfies BuildOptions;

export interface EdgeOptions {
  port?: number;
  host?: string;
  /** Overrides of wrangler.toml [vars], and the EDGE_SECRET secret. */
  vars?: Record<string, string>;
  /** Folder for persisted KV; unset keeps KV in memory. */
  persistDir?: string;
  cf?: Record<string, unknown>;
  /** Print the worker's console output (default: only warnings and errors from Miniflare). */
  verbose?: boolean;
  /** More workers in the same workerd, each reached through its `routes` (bench baselines). */
  extraWorkers?: WorkerOptions[];
  /**
   * Bind CLICKS_QUEUE and consume it, as wrangler.toml says (default true). false leaves the
   * queue out: a deployment without Queues, whose undeliverable clicks are lost.
   */
  queues?: boolean;
  /** Opens workerd's V8 inspector on this loopback port (Chrome DevTools; the soak reads the isolate's heap). */
  inspectorPort?: number;
  /** Receives the worker's console output (workerd's structured logs) instead of stdout/stderr. */
  onLog?: (log: { level: string; message: string }) => void;
}

export interface Edge {
  url: string;
  mf: Miniflare;
  close: () => Promise<void>;
}

/** The edge worker as wrangler.toml declares it, with `vars` over its [vars]; `queues: false` leaves its queues out. */
export async function edgeWorker(vars: Record<string, string> = {}, name = "linkflow-edge", opts: { queues?: boolean } = {}): Promise<WorkerOptions> {
  const cfg = wranglerConfig();
  return {
    ...(opts.queues !== false && queueOptions(cfg)),
    name,
    modules: true,
    script: await bundleWorker(),
    compatibilityDate: cfg.compatibility_date,
    compatibilityFlags: cfg.compatibility_flags ?? [],
    kvNamespaces: (cfg.kv_namespaces ?? []).map((k) => k.binding),
    ...ratelimitOptions(cfg),
    bindings: { ...cfg.vars, ...vars },
  };
}

/**
 * A queue has one consumer (Miniflare refuses a second): an extra worker built by edgeWorker
 * (bench baselines) keeps its producer bindings, but the main worker consumes the queues.
 */
function withoutConsumersOf(w: WorkerOptions, main: WorkerOptions): WorkerOptions {
  const taken = main.queueConsumers && !Array.isArray(main.queueConsumers) ? Object.keys(main.queueConsumers) : [];
  if (!w.queueConsumers || Array.isArray(w.queueConsumers) || !taken.length) return w;
  return { ...w, queueConsumers: Object.fromEntries(Object.entries(w.queueConsumers).filter(([q]) => !taken.includes(q))) };
}

export async function startEdge(opts: EdgeOptions = {}): Promise<Edge> {
  // As `wrangler deploy` would with no secret put: refuse, with the line that says what to set.
  const problem = secretProblem("EDGE_SECRET", opts.vars?.EDGE_SECRET);
  if (problem) throw new Error(`edge: ${problem}`);
  const main = await edgeWorker(opts.vars, undefined, { queues: opts.queues });
  const mf = new Miniflare({
    // The first worker answers every request no other worker's routes claim.
    workers: [main, ...(opts.extraWorkers ?? []).map((w) => withoutConsumersOf(w, main))],
    // Miniflare checks that its handler returns nothing: wrap whatever the caller passed.
    ...(opts.onLog && { handleStructuredLogs: (l: { level: string; message: string }) => void opts.onLog!(l) }),
    kvPersist: opts.persistDir ?? false,
    ...(opts.inspectorPort && { inspectorPort: opts.inspectorPort }),
    cf: opts.cf ?? DEV_CF,
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    log: new Log(opts.verbose ? LogLevel.INFO : LogLevel.WARN),
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, mf, close: () => mf.dispose() };
}
