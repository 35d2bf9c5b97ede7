/**
 * `npm start`: the whole stack on embedded defaults. Ingest (with PGlite unless DATABASE_URL)
 * on PORT (8788), the worker in workerd on EDGE_PORT (8787) with KV persisted under DATA_DIR.
 */
import { join, resolve } from "node:path";
import { startEdge } from "../edge/miniflare.ts";
import { loadConfig } from "../ingest/src/config.ts";
import { startIngest } from "../ingest/src/server.ts";

const edgePort = Number(process.env.EDGE_PORT ?? 8787);
// The worker is ours here, so its URLs follow EDGE_PORT unless set explicitly.
process.env.SHORT_BASE_URL ??= `http://localhost:${edgePort}`;
process.env.EDGE_ADMIN_URL ??= `http://127.0.0.1:${edgePort}`;
const config = loadConfig();
const host = config.HOST;

const ingest = await startIngest(config);
const edge = await startEdge({
  port: edgePort,
  host,
  persistDir: resolve(join(config.DATA_DIR, "kv")),
  vars: { INGEST_URL: ingest.url, EDGE_SECRET: config.EDGE_SECRET },
  verbose: true,
});

const masked = ingest.databaseUrl.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
console.log(`
Linkflow is running
  edge (redirects)   ${edge.url}/<code>
  dashboard          ${ingest.url}/           (sign in with the admin key)
  ingest (API)       ${ingest.url}/api    reference: ${ingest.url}/docs
  PostgreSQL         ${config.DATABASE_URL ? masked : `${masked}   (embedded PGlite in ${join(config.DATA_DIR, "pglite")})`}
  admin API key      ${ingest.adminKeyGenerated ? `${ingest.adminKey}   (generated, kept in ${join(config.DATA_DIR, "admin-key")})` : "from ADMIN_API_KEY"}

Try:
  curl -s -X POST ${ingest.url}/api/links -H "Authorization: Bearer ${ingest.adminKeyGenerated ? ingest.adminKey : "$ADMIN_API_KEY"}" \\
       -H 'content-type: application/json' -d '{"url":"https://example.com"}'
  curl -sI ${edge.url}/<code>
Ctrl-C stops everything.
`);

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping…`);
  // Edge first, so no new beacons arrive while ingest drains its last requests.
  await edge.close().catch(() => {});
  await ingest.close().catch(() => {});
  process.exit(0);
}
// Miniflare's own SIGINT handler kills workerd and exits at once (code 130), before ingest could
// finish its requests and close PGlite; take the signal over (workerd is still killed on exit).
process.removeAllListeners("SIGINT");
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
