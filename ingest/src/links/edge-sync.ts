import type { Logger } from "pino";
import type { Sql, TransactionSql } from "postgres";
import type { EdgeLink } from "../../../shared/event.ts";
import type { Keys } from "../../../shared/keys.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../../shared/signing.ts";
import { toEdgeLink } from "./edge-record.ts";
import type { LinkRow } from "./row.ts";

/** KV write-through: `push` a link's edge record, `remove` a (domain, code) key. */
export interface EdgeSync {
  push: (link: EdgeLink) => Promise<boolean>;
  remove: (domain: string, code: string) => Promise<boolean>;
  /** Pushes the domain's robots.txt allow list (its crawlable codes, read from PostgreSQL). */
  robots?: (domain: string) => Promise<boolean>;
}

/**
 * The edge_sync_pending marker of a domain's robots.txt: no link code has a dot
 * (shared/constants.ts CODE_PATTERN), so it never names a link.
 */
export const ROBOTS_PENDING_CODE = "robots.txt";
/** Codes one robots.txt lists at most (the worker's limit, shared/edge-link.ts robotsSchema). */
const MAX_ROBOTS_CODES = 100_000;

export interface EdgeSyncRetry {
  /** Starts the retry loop (every `retryMs`); `stop` ends it and waits for a pass in progress. */
  start: () => void;
  stop: () => Promise<void>;
  /** One retry pass now: the number of keys the worker took. */
  retryPending: () => Promise<number>;
}

const MAX_BACKOFF_S = 300;
const BATCH = 50;

/**
 * Claims due keys by pushing their next_at forward. The claimed rows are updated by their ctid
 * (a TID scan): joined back on (domain, code), the planner hashed the batch against a
 * sequential scan of the whole table, so each batch of 50 read every pending key (3.4 ms at
 * 20,000 keys), and draining a backlog after a worker outage grew with its square.
 */
export const claimPending = (sql: Sql | TransactionSql) =>
  sql<{ domain: string; code: string; version: string; attempts: number }[]>`
    UPDATE edge_sync_pending SET next_at = now() + interval '60 seconds'
    WHERE ctid = ANY(ARRAY(
      SELECT ctid FROM edge_sync_pending WHERE next_at <= now() ORDER BY next_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED))
    RETURNING domain, code, version, attempts`;

/**
 * KV write-through: sends a link's edge record to the worker's admin route (PUT) so a new or
 * changed link takes effect at once, and DELETEs the key of a deleted (or re-slugged) link.
 * PostgreSQL stays the truth: if the worker is unreachable the change is still made, and (with
 * `sql`) the key is recorded in `edge_sync_pending`; the retry loop then pushes the key's
 * *current* state from PostgreSQL (record or delete) with backoff until the worker takes it. KV
 * records never expire, so a failed update or delete is not healed by anything else.
 *
 * A domain's robots.txt allow list (its crawlable codes) goes the same way: `robots(domain)`
 * PUTs the whole current list to /_admin/robots; a failure is recorded as the domain's
 * ROBOTS_PENDING_CODE key, and the retry loop sends the list as it is then.
 *
 * The result is callable (`sync(link)` = `sync.push(link)`) for callers written before `remove`.
 */
export function edgeSync(
  adminUrl: string,
  keys: Pick<Keys, "edgeAdmin" | "password">,
  log: Logger,
  opts: { sql?: Sql; retryMs?: number } = {},
): Required<EdgeSync> & EdgeSync["push"] & EdgeSyncRetry & { pushLinks: (ids: number[]) => Promise<void> } {
  const { sql, retryMs = 5_000 } = opts;

  async function send(method: "PUT" | "DELETE", payload: object, code: string, path = "/_admin/links"): Promise<string | null> {
    const body = JSON.stringify(payload);
    try {
      const res = await fetch(adminUrl + path, {
        method,
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(keys.edgeAdmin, requestMessage(method, path, body)) },
        body,
        signal: AbortSignal.timeout(2000),
      });
      if (res.ok) return null;
      log.warn({ status: res.status, code, method }, "edge KV write refused");
      return `HTTP ${res.status}`;
    } catch (err) {
      log.warn({ err: String(err), code, method }, "edge KV write failed; retried from edge_sync_pending");
      return String(err).slice(0, 200);
    }
  }

  async function remember(domain: string, code: string, error: string) {
    if (!sql) return;
    try {
      await sql`
        INSERT INTO edge_sync_pending (domain, code, last_error) VALUES (${domain}, ${code}, ${error})
        ON CONFLICT (domain, code) DO UPDATE SET version = nextval('edge_sync_version'), queued_at = now(), next_at = now(), last_error = EXCLUDED.last_error`;
    } catch (err) {
      // PostgreSQL down as well: the link change itself could not have committed either.
      log.error({ err: String(err), code }, "could not record a failed KV write");
    }
  }

  async function push(link: EdgeLink): Promise<boolean> {
    if (!adminUrl) return false;
    const error = await send("PUT", link, link.code);
    if (error) await remember(link.domain, link.code, error);
    return !error;
  }
  async function remove(domain: string, code: string): Promise<boolean> {
    if (!adminUrl) return false;
    const error = await send("DELETE", { domain, code }, code);
    if (error) await remember(domain, code, error);
    return !error;
  }

  /** The domain's crawlable codes, as they are in PostgreSQL now, sent to the worker. */
  async function sendRobots(domain: string): Promise<string | null> {
    const rows = await sql!<{ code: string }[]>`
      SELECT code FROM links WHERE domain = ${domain} AND crawlable ORDER BY code COLLATE "C" LIMIT ${MAX_ROBOTS_CODES}`;
    return send("PUT", { domain, allow: rows.map((r) => r.code) }, ROBOTS_PENDING_CODE, "/_admin/robots");
  }
  async function robots(domain: string): Promise<boolean> {
    if (!adminUrl || !sql) return false;
    const error = await sendRobots(domain);
    if (error) await remember(domain, ROBOTS_PENDING_CODE, error);
    return !error;
  }

  async function retryPending(): Promise<number> {
    if (!sql || !adminUrl) return 0;
    // Claim due keys by pushing their next_at forward (no transaction held over the HTTP calls;
    // any number of ingest processes can run this loop).
    const due = await claimPending(sql);
    let done = 0;
    for (const k of due) {
      let error: string | null;
      if (k.code === ROBOTS_PENDING_CODE) error = await sendRobots(k.domain);
      else {
        const [row] = await sql<LinkRow[]>`SELECT * FROM links WHERE domain = ${k.domain} AND code = ${k.code}`;
        error = row ? await send("PUT", await toEdgeLink(row, keys.password), k.code) : await send("DELETE", { domain: k.domain, code: k.code }, k.code);
      }
      if (!error) {
        done++;
        await sql`DELETE FROM edge_sync_pending WHERE domain = ${k.domain} AND code = ${k.code} AND version = ${k.version}`;
      } else {
        const backoffS = Math.min(MAX_BACKOFF_S, 2 ** Math.min(k.attempts + 1, 9));
        await sql`
          UPDATE edge_sync_pending SET attempts = attempts + 1, last_error = ${error}, next_at = now() + make_interval(secs => ${backoffS})
          WHERE domain = ${k.domain} AND code = ${k.code} AND version = ${k.version}`;
      }
    }
    if (done) log.info({ keys: done }, "edge KV writes retried");
    return done;
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const start = () => {
    if (!sql || !adminUrl || timer) return;
    timer = setInterval(() => {
      running = running.then(() => retryPending().catch((err) => log.warn({ err: String(err) }, "edge KV retry pass failed")));
    }, retryMs);
    timer.unref();
  };
  const stop = async () => {
    clearInterval(timer);
    timer = undefined;
    await running;
  };
  /** Pushes the current records of these links (a click limit reached or lifted: their `gone` changed). */
  async function pushLinks(ids: number[]): Promise<void> {
    if (!sql) return;
    const rows = await sql<LinkRow[]>`SELECT * FROM links WHERE id = ANY(${ids}::bigint[])`;
    for (const row of rows) await push(await toEdgeLink(row, keys.password));
  }

  return Object.assign(push, { push, remove, robots, pushLinks, start, stop, retryPending });
}

/**
 * Queues every password-protected link for a push of its current record (the retry loop sends
 * it): their verifiers are sealed with a key derived from EDGE_SECRET, so a rotation or a
 * change of the record format must reach KV.
 */
export async function requeuePasswordLinks(sql: Sql): Promise<void> {
  await sql`
    INSERT INTO edge_sync_pending (domain, code, last_error)
    SELECT domain, code, 'password verifier re-sealed' FROM links WHERE password_hash IS NOT NULL
    ON CONFLICT (domain, code) DO UPDATE SET version = nextval('edge_sync_version'), next_at = now()`;
}
