/**
 * Runs the edge worker in workerd (through Miniflare) from Node: `npm start`, the tests and the
 * benchmarks use this, with the bindings wrangler.toml declares. It bundles edge/src with
 * esbuild (what wrangler does too) and gives workerd an explicit `cf` object, so nothing
 * tries to fetch Cloudflare's request metadata from the network.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { parse } from "smol-toml";

const root = fileURLToPath(new URL("..", import.meta.url));

interface WranglerToml {
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  kv_namespaces?: { binding: string }[];
  vars?: Record<string, string>;
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
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    target: "es2022",
    minify: false,
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0]!.text;
}

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
}

export interface Edge {
  url: string;
  mf: Miniflare;
  close: () => Promise<void>;
}

/** The edge worker as wrangler.toml declares it, with `vars` over its [vars]. */
export async function edgeWorker(vars: Record<string, string> = {}, name = "linkflow-edge"): Promise<WorkerOptions> {
  const cfg = wranglerConfig();
  return {
    name,
    modules: true,
    script: await bundleWorker(),
    compatibilityDate: cfg.compatibility_date,
    compatibilityFlags: cfg.compatibility_flags ?? [],
    kvNamespaces: (cfg.kv_namespaces ?? []).map((k) => k.binding),
    bindings: { ...cfg.vars, ...vars },
  };
}

export async function startEdge(opts: EdgeOptions = {}): Promise<Edge> {
  const mf = new Miniflare({
    // The first worker answers every request no other worker's routes claim.
    workers: [await edgeWorker(opts.vars), ...(opts.extraWorkers ?? [])],
    kvPersist: opts.persistDir ?? false,
    cf: opts.cf ?? DEV_CF,
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    log: new Log(opts.verbose ? LogLevel.INFO : LogLevel.WARN),
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, mf, close: () => mf.dispose() };
}
