/**
 * linkflow: the command line for the ingest API (`npm run cli -- <command>`, or `npx linkflow`).
 *
 *   links create <url> [--slug s] [--domain d] [--title t] [--tag x]…   links list [--q s] [--tag x] [--limit n]
 *   links get <id>   links delete <id>
 *   keys create --name n --scope links:read [--scope …] [--rpm n]   keys list   keys revoke <id>
 *   domains add <hostname>   domains verify <id>   domains list
 *   pipeline   dlq list   dlq replay [--id n]…
 *
 * Options: --json (raw JSON), --url (LINKFLOW_API_URL, default http://127.0.0.1:8788),
 * --key (LINKFLOW_API_KEY, else DATA_DIR/admin-key). Exit code 1 on an API error (its JSON on stderr).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: "boolean", default: false },
    url: { type: "string" },
    key: { type: "string" },
    slug: { type: "string" },
    domain: { type: "string" },
    title: { type: "string" },
    tag: { type: "string", multiple: true },
    q: { type: "string" },
    limit: { type: "string" },
    name: { type: "string" },
    scope: { type: "string", multiple: true },
    rpm: { type: "string" },
    id: { type: "string", multiple: true },
    help: { type: "boolean", short: "h", default: false },
  },
});

const usage = readFileSync(new URL(import.meta.url), "utf8").split("*/")[0]!.replace(/^\/\*\*|^ \* ?/gm, "").trim();
const base = (opt.url ?? process.env.LINKFLOW_API_URL ?? "http://127.0.0.1:8788").replace(/\/$/, "");

function apiKey(): string {
  const key = opt.key ?? process.env.LINKFLOW_API_KEY;
  if (key) return key;
  try {
    return readFileSync(join(process.env.DATA_DIR ?? "data", "admin-key"), "utf8").trim();
  } catch {
    fail("no API key: pass --key, set LINKFLOW_API_KEY, or run next to npm start's data/admin-key");
  }
}

function fail(message: string): never {
  process.stderr.write(`linkflow: ${message}\n`);
  process.exit(2);
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${apiKey()}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).catch((err) => fail(`cannot reach ${base}: ${String(err)}`));
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    process.stderr.write(JSON.stringify(data) + "\n");
    process.exit(1);
  }
  return data;
}

/** Prints JSON with --json, else a compact table of the chosen columns. */
function show(data: unknown, columns: string[]) {
  if (opt.json) return void process.stdout.write(JSON.stringify(data, null, 2) + "\n");
  const items = (data && typeof data === "object" && "items" in data ? (data as { items: unknown[] }).items : [data]) as Record<string, unknown>[];
  const cell = (v: unknown) => (v === null || v === undefined ? "" : Array.isArray(v) ? v.join(",") : typeof v === "object" ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...items.map((i) => cell(i[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  console.log(line(columns));
  for (const i of items) console.log(line(columns.map((c) => cell(i[c]))));
}

const arg = (i: number, what: string) => positionals[i] ?? fail(`missing ${what}`);
const LINK_COLS = ["id", "code", "domain", "url", "short_url", "redirect_status", "created_at"];
const KEY_COLS = ["id", "name", "prefix", "scopes", "requests_per_minute", "revoked_at"];
const DOMAIN_COLS = ["id", "hostname", "verified", "created_at"];

const [group, action] = positionals;
if (opt.help || !group) {
  console.log(usage);
  process.exit(opt.help ? 0 : 2);
}
switch (`${group} ${action ?? ""}`.trim()) {
  case "links create":
    show(await call("POST", "/api/links", linkBody()), LINK_COLS);
    break;
  case "links list": {
    const q = new URLSearchParams();
    if (opt.q) q.set("q", opt.q);
    for (const t of opt.tag ?? []) q.append("tag", t);
    if (opt.limit) q.set("limit", opt.limit);
    show(await call("GET", `/api/links?${q}`), LINK_COLS);
    break;
  }
  case "links get":
    show(await call("GET", `/api/links/${encodeURIComponent(arg(2, "link id"))}`), LINK_COLS);
    break;
  case "links delete":
    show(await call("DELETE", `/api/links/${encodeURIComponent(arg(2, "link id"))}`), LINK_COLS);
    break;
  case "keys create":
    show(await call("POST", "/api/keys", { name: opt.name ?? fail("--name is required"), scopes: opt.scope ?? fail("--scope is required"), ...(opt.rpm ? { requests_per_minute: Number(opt.rpm) } : {}) }), ["key", ...KEY_COLS]);
    break;
  case "keys list":
    show(await call("GET", "/api/keys"), KEY_COLS);
    break;
  case "keys revoke":
    show(await call("DELETE", `/api/keys/${encodeURIComponent(arg(2, "key id"))}`), KEY_COLS);
    break;
  case "domains add": {
    // A new domain is pending: say which TXT record proves it.
    const d = (await call("POST", "/api/domains", { hostname: arg(2, "hostname") })) as { verification?: { instructions: string } };
    show(d, DOMAIN_COLS);
    if (!opt.json && d.verification) console.log(d.verification.instructions);
    break;
  }
  case "domains verify":
    show(await call("POST", `/api/domains/${encodeURIComponent(arg(2, "domain id"))}/verify`), DOMAIN_COLS);
    break;
  case "domains list":
    show(await call("GET", "/api/domains"), DOMAIN_COLS);
    break;
  case "pipeline":
    show(await call("GET", "/api/pipeline"), ["postgres_clicks", "kinesis_sent", "clickhouse_clicks", "outbox_backlog", "dlq", "breakers"]);
    break;
  case "dlq list":
    show(await call("GET", "/api/pipeline/dlq"), ["id", "source", "shard_id", "error", "created_at"]);
    break;
  case "dlq replay":
    show(await call("POST", "/api/pipeline/dlq/replay", opt.id ? { ids: opt.id.map(Number) } : {}), ["replayed"]);
    break;
  default:
    fail(`unknown command '${positionals.join(" ")}' (see --help)`);
}

function linkBody() {
  const target = positionals[2] ?? fail("missing destination: links create <url>");
  return {
    url: target,
    ...(opt.slug ? { slug: opt.slug } : {}),
    ...(opt.domain ? { domain: opt.domain } : {}),
    ...(opt.title ? { title: opt.title } : {}),
    ...(opt.tag ? { tags: opt.tag } : {}),
  };
}
