/**
 * Refuses a deployment environment of wrangler.toml that still holds the repository's placeholders
 * or the local worker's values: `tsx scripts/check-wrangler.ts production [wrangler.toml]` prints one
 * line per problem and exits 1. This repository ships placeholders by design, so `npm run build:edge`
 * (and CI) runs it with `--warn`: it reports and exits 0, except in a deployment build
 * (`DEPLOY_ENV=production npm run build:edge`, which `npm run deploy:production` does), where it fails.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";

type Route = string | { pattern: string; zone_name?: string; custom_domain?: boolean };
interface Section {
  name?: string;
  routes?: Route[];
  route?: Route;
  kv_namespaces?: { binding: string; id?: string }[];
  vars?: Record<string, unknown>;
  queues?: { producers?: { queue: string }[]; consumers?: { queue: string; dead_letter_queue?: string }[] };
  observability?: { enabled?: boolean };
}
type Wrangler = Section & { env?: Record<string, Section> };

/** Names that never reach a real deployment: documentation and test domains, loopback, private space. */
function reservedHost(host: string): string | null {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (/(^|\.)example\.(com|net|org)$/.test(h) || /\.(example|test|invalid|localhost)$/.test(h)) return "a documentation placeholder";
  if (h === "localhost" || h === "0.0.0.0" || h === "::1" || /^127\./.test(h)) return "loopback";
  if (isIP(h) === 4 && /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/.test(h)) return "private address space";
  return null;
}

const hostOf = (pattern: string) => pattern.replace(/^[a-z]+:\/\//i, "").split("/")[0]!.replace(/:\d+$/, "").replace(/^\*\.?/, "");

/** What keeps environment `envName` of a parsed wrangler.toml from being deployed; empty when none. */
export function wranglerProblems(cfg: Wrangler, envName: string): string[] {
  const env = cfg.env?.[envName];
  const at = `[env.${envName}]`;
  if (!env) return [`${at} is missing: wrangler would deploy the top level (the local worker) instead`];
  const problems: string[] = [];

  if (!env.name || env.name === cfg.name) problems.push(`${at} name ${JSON.stringify(env.name ?? cfg.name)} is the local worker's: give the environment its own`);

  const routes = env.routes ?? (env.route ? [env.route] : []);
  if (!routes.length) problems.push(`${at} routes: none; add the short domain's route`);
  for (const r of routes) {
    const { pattern, zone_name } = typeof r === "string" ? { pattern: r, zone_name: undefined } : r;
    for (const [what, host] of [["route", hostOf(pattern)], ["zone_name", zone_name]] as const) {
      const why = host && reservedHost(host);
      if (why) problems.push(`${at} ${what} ${JSON.stringify(what === "route" ? pattern : host)} is ${why}: use the real short domain`);
    }
  }

  const kv = env.kv_namespaces ?? [];
  if (!kv.some((k) => k.binding === "LINKS")) problems.push(`${at} kv_namespaces: no LINKS binding`);
  for (const k of kv) {
    const id = k.id ?? "";
    if (/^(.)\1*$/.test(id)) problems.push(`${at} KV ${k.binding} id ${JSON.stringify(id)} is a placeholder: \`npx wrangler kv namespace create ${k.binding} --env ${envName}\` prints the id`);
    else if (!/^[0-9a-f]{32}$/i.test(id)) problems.push(`${at} KV ${k.binding} id ${JSON.stringify(id)} is not a namespace id (32 hex digits)`);
  }

  const vars = env.vars ?? {};
  const ingest = String(vars.INGEST_URL ?? "");
  let url: URL | null = null;
  try {
    url = new URL(ingest);
  } catch {
    problems.push(`${at} INGEST_URL ${JSON.stringify(ingest)} is not a URL: set ingest's public origin`);
  }
  if (url) {
    const why = reservedHost(url.hostname);
    if (why) problems.push(`${at} INGEST_URL ${JSON.stringify(ingest)} is ${why}: set ingest's public origin`);
    else if (url.protocol !== "https:") problems.push(`${at} INGEST_URL ${JSON.stringify(ingest)} is not https: beacons would cross the internet in clear`);
  }
  const hosts = String(vars.PRIMARY_HOSTS ?? "").split(",").map((h) => h.trim()).filter(Boolean);
  if (!hosts.length) problems.push(`${at} PRIMARY_HOSTS is empty: list the primary short domain's hostnames`);
  for (const h of hosts) {
    const why = reservedHost(h);
    if (why) problems.push(`${at} PRIMARY_HOSTS entry ${JSON.stringify(h)} is ${why}: list the primary short domain's hostnames`);
  }
  for (const name of ["EDGE_SECRET", "EDGE_SECRET_PREVIOUS"])
    if (name in vars) problems.push(`${at} vars.${name}: a secret is not a variable; remove it and \`npx wrangler secret put ${name} --env ${envName}\``);

  // A queue has one consumer: sharing the local worker's queues would take each other's clicks.
  const queuesOf = (s: Section) => [...(s.queues?.producers ?? []).map((p) => p.queue), ...(s.queues?.consumers ?? []).map((c) => c.queue)];
  const local = new Set(queuesOf(cfg));
  for (const q of new Set(queuesOf(env))) if (local.has(q) || q.endsWith("-local")) problems.push(`${at} queue ${JSON.stringify(q)} is the local worker's: give the environment its own`);

  // Environments inherit [observability] from the top level unless they set their own.
  if ((env.observability ?? cfg.observability)?.enabled !== true) problems.push(`${at} observability is off: set [observability] enabled = true`);
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const warn = args.includes("--warn");
  const [envName, file = fileURLToPath(new URL("../wrangler.toml", import.meta.url))] = args.filter((a) => a !== "--warn");
  if (!envName) {
    console.error("usage: tsx scripts/check-wrangler.ts <env> [wrangler.toml] [--warn]");
    process.exit(2);
  }
  const problems = wranglerProblems(parse(readFileSync(file, "utf8")) as unknown as Wrangler, envName);
  const fatal = problems.length > 0 && (!warn || process.env.DEPLOY_ENV === envName);
  for (const p of problems) console.error(`${fatal ? "error" : "warning"}: ${p}`);
  if (problems.length && !fatal) console.error(`(${problems.length} placeholder(s) in [env.${envName}]: reported only; DEPLOY_ENV=${envName} refuses them)`);
  if (!problems.length) console.log(`[env.${envName}]: no placeholders`);
  process.exit(fatal ? 1 : 0);
}
