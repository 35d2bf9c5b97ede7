import type { JSONValue, TransactionSql } from "postgres";
import type { TargetingRule } from "../../../shared/event.ts";
import { hashPassword } from "../../../shared/password.ts";
import { randomCode } from "./codes.ts";
import type { Sql } from "../db/connect.ts";
import type { EdgeSync } from "./edge-sync.ts";
import { toEdgeLink } from "./edge-record.ts";
import type { LinkRow } from "./row.ts";
import { domainError } from "../errors.ts";
import type { Link, LinkCreate, LinkUpdate, ListQuery } from "./schema.ts";
import { checkUrl, loopReason, normaliseHost } from "./url-safety.ts";
import { enqueueLinkEvent } from "../webhooks/events.ts";

/**
 * Links: the one place rows are written and turned into API objects and edge records.
 * Every query is scoped by the caller's workspace: another workspace's link is "not found".
 * PostgreSQL's UNIQUE (domain, code) decides slug clashes.
 */

const UNIQUE_VIOLATION = "23505";
const CODE_ATTEMPTS = 5;

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function shortUrl(shortBaseUrl: string, domain: string, code: string): string {
  const base = new URL(shortBaseUrl);
  return domain ? `${base.protocol}//${domain}/${code}` : `${shortBaseUrl.replace(/\/$/, "")}/${code}`;
}

/** The API's view of a row: never the password hash. */
export function presentLink(r: LinkRow, shortBaseUrl: string): Link {
  return {
    id: Number(r.id),
    code: r.code,
    domain: r.domain,
    short_url: shortUrl(shortBaseUrl, r.domain, r.code),
    url: r.url,
    redirect_status: r.redirect_status as Link["redirect_status"],
    title: r.title,
    tags: r.tags,
    expires_at: iso(r.expires_at),
    expired_url: r.expired_url,
    max_clicks: r.max_clicks === null ? null : Number(r.max_clicks),
    has_password: r.password_hash !== null,
    targeting: r.targeting ?? [],
    utm: r.utm ?? {},
    archived: r.archived,
    forward_query: r.forward_query,
    crawlable: r.crawlable,
    limit_reached_at: iso(r.limit_reached_at),
    clicks: Number(r.clicks ?? 0),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
}

/** ILIKE pattern for a substring, with the user's own % _ \ taken literally. */
export const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (m) => "\\" + m)}%`;

interface Cursor {
  // created_at as microsecond ISO text from PostgreSQL, sent back as text (a timestamptz
  // parameter would go through a JS Date and lose the microseconds: rows would be skipped).
  t: string;
  i: number; // id
  s: ListQuery["sort"];
  /** Clicks of the last row (sorts by clicks). */
  c?: number;
}
const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString("base64url");
function decodeCursor(raw: string, sort: ListQuery["sort"]): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as Cursor;
    if (typeof c.t === "string" && !Number.isNaN(Date.parse(c.t)) && Number.isSafeInteger(c.i) && c.s === sort && (!sort.endsWith("clicks") || Number.isSafeInteger(c.c))) return c;
  } catch {
    /* fall through */
  }
  throw domainError("invalid_cursor", "cursor is not a next_cursor of this listing (same sort)", "cursor");
}

export interface LinkStoreDeps {
  sql: Sql;
  shortBaseUrl: string;
  /** The shortener's own hostnames (normalised): destinations there would loop. */
  ownHosts: Set<string>;
  edge: EdgeSync;
  /** Seals password hashes in edge records (shared/keys.ts `password`). */
  passwordKey: Uint8Array<ArrayBuffer>;
  /** ALLOW_PRIVATE_DESTINATIONS: destinations in private address space are accepted. */
  allowPrivate?: boolean;
}

type Destinations = { field: string; raw: string }[];

export function linkStore({ sql, shortBaseUrl, ownHosts, edge, passwordKey, allowPrivate = false }: LinkStoreDeps) {
  /** URL safety for every destination of an item; returns the normalised URLs by field. */
  async function safeUrls(items: Destinations): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const hosts = new Map<string, string>(); // host → first field
    for (const { field, raw } of items) {
      const r = checkUrl(raw, { allowPrivate });
      if (!r.ok) throw domainError("unsafe_url", `${field}: ${r.reason}`, field);
      if (ownHosts.has(r.host)) throw domainError("unsafe_url", `${field}: ${loopReason(r.host)}`, field);
      if (!hosts.has(r.host)) hosts.set(r.host, field);
      out.set(field, r.url);
    }
    await noVerifiedDomain(sql, hosts);
    return out;
  }

  /** Refuses destinations on a verified custom domain (any workspace's): they point back at the shortener. Pending claims are nobody's yet. */
  async function noVerifiedDomain(q: Sql | TransactionSql, hosts: Map<string, string>) {
    if (!hosts.size) return;
    const [own] = await q<{ hostname: string }[]>`SELECT hostname FROM domains WHERE hostname IN ${q([...hosts.keys()])} AND verified_at IS NOT NULL LIMIT 1`;
    if (own) {
      const field = hosts.get(own.hostname)!;
      throw domainError("unsafe_url", `${field}: ${loopReason(own.hostname)}`, field);
    }
  }

  /** '' or a verified custom domain of this workspace (normalised); otherwise 400. */
  async function workspaceDomain(ws: number, raw: string | undefined): Promise<string> {
    if (!raw) return "";
    const host = normaliseHost(raw);
    const [row] = host ? await sql<{ verified: boolean; id: string }[]>`SELECT id, verified_at IS NOT NULL AS verified FROM domains WHERE hostname = ${host} AND workspace_id = ${ws}` : [];
    if (!row) throw domainError("unknown_domain", `'${raw}' is not a domain of this workspace (add it with POST /api/domains)`, "domain");
    if (!row.verified) throw domainError("domain_unverified", `'${host}' is not verified yet: publish its DNS TXT record, then POST /api/domains/${row.id}/verify`, "domain");
    return host;
  }

  function destinationsOf(input: { url?: string; expired_url?: string | null; targeting?: TargetingRule[] }): Destinations {
    const d: Destinations = [];
    if (input.url !== undefined) d.push({ field: "url", raw: input.url });
    if (input.expired_url) d.push({ field: "expired_url", raw: input.expired_url });
    input.targeting?.forEach((t, i) => d.push({ field: `targeting.${i}.url`, raw: t.url }));
    return d;
  }

  const withSafeTargeting = (targeting: TargetingRule[] | undefined, urls: Map<string, string>) =>
    targeting?.map((t, i) => ({ ...t, url: urls.get(`targeting.${i}.url`)! }));

  async function insert(ws: number, v: Omit<LinkRow, "id" | "workspace_id" | "code" | "limit_reached_at" | "created_at" | "updated_at">, code: string): Promise<LinkRow | null> {
    try {
      // The link.created webhook message commits with the row (docs/WEBHOOKS.md).
      return await sql.begin(async (tx) => {
        const [row] = await tx<LinkRow[]>`
        INSERT INTO links (workspace_id, domain, code, url, redirect_status, title, tags, expires_at, expired_url,
                           max_clicks, password_hash, targeting, utm, archived, forward_query, crawlable)
        VALUES (${ws}, ${v.domain}, ${code}, ${v.url}, ${v.redirect_status}, ${v.title}, ${tx.array(v.tags)}::text[],
                ${v.expires_at}, ${v.expired_url}, ${v.max_clicks}, ${v.password_hash},
                ${tx.json(v.targeting as unknown as JSONValue)}, ${tx.json(v.utm)}, ${v.archived}, ${v.forward_query}, ${v.crawlable})
        RETURNING *`;
        await enqueueLinkEvent(tx, ws, "link.created", presentLink(row!, shortBaseUrl));
        return row!;
      });
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return null;
      throw err;
    }
  }

  /**
   * Pushes the new edge record (and removes the old KV key when domain or code changed), and the
   * robots.txt allow list of each domain whose crawlable codes changed (edge/src/robots.ts).
   */
  async function publish(row: LinkRow, previous?: { domain: string; code: string; crawlable?: boolean }) {
    const moved = previous !== undefined && (previous.domain !== row.domain || previous.code !== row.code);
    if (moved) await edge.remove(previous.domain, previous.code);
    await edge.push(await toEdgeLink(row, passwordKey));
    const robots = new Set<string>();
    if (previous?.crawlable && (moved || !row.crawlable)) robots.add(previous.domain);
    if (row.crawlable && (moved || !previous?.crawlable)) robots.add(row.domain);
    for (const domain of robots) await edge.robots?.(domain);
  }

  /** A link's clicks (link_clicks' slots summed), as a column of a query over `links`. */
  const clicksColumn = sql`(SELECT coalesce(sum(lc.clicks), 0)::bigint FROM link_clicks lc WHERE lc.link_id = links.id) AS clicks`;

  async function get(ws: number, id: number): Promise<LinkRow> {
    const [row] = await sql<LinkRow[]>`SELECT *, ${clicksColumn} FROM links WHERE id = ${id} AND workspace_id = ${ws}`;
    if (!row) throw domainError("not_found", "no such link in this workspace");
    return row;
  }

  function filters(q: Pick<ListQuery, "q" | "tag" | "domain" | "archived">) {
    return sql`
      ${q.q ? sql`AND (url ILIKE ${likePattern(q.q)} OR code ILIKE ${likePattern(q.q)} OR title ILIKE ${likePattern(q.q)})` : sql``}
      ${q.tag ? sql`AND tags @> ARRAY[${q.tag}]::text[]` : sql``}
      ${q.domain !== undefined ? sql`AND domain = ${q.domain === "" ? "" : normaliseHost(q.domain) || q.domain}` : sql``}
      ${q.archived === "all" ? sql`` : sql`AND archived = ${q.archived === "true"}`}`;
  }
  return {
    safeUrls,
    get,

    async getByCode(ws: number, domain: string, code: string): Promise<LinkRow> {
      const [row] = await sql<LinkRow[]>`
        SELECT *, ${clicksColumn} FROM links WHERE domain = ${normaliseHost(domain) || domain} AND code = ${code} AND workspace_id = ${ws}`;
      if (!row) throw domainError("not_found", "no such link in this workspace");
      return row;
    },

    /** Creates a link (throws domain errors: unsafe_url, unknown_domain, slug_taken…). Pushes it to the edge. */
    async create(ws: number, input: LinkCreate, opts: { publish?: boolean } = {}): Promise<LinkRow> {
      const urls = await safeUrls(destinationsOf(input));
      const domain = await workspaceDomain(ws, input.domain);
      const values = {
        domain,
        url: urls.get("url")!,
        redirect_status: input.redirect_status ?? 302,
        title: input.title ?? null,
        tags: [...new Set(input.tags ?? [])],
        expires_at: input.expires_at ? new Date(input.expires_at) : null,
        expired_url: input.expired_url ? urls.get("expired_url")! : null,
        max_clicks: input.max_clicks == null ? null : String(input.max_clicks),
        password_hash: input.password ? await hashPassword(input.password) : null,
        targeting: withSafeTargeting(input.targeting, urls) ?? [],
        utm: input.utm ?? {},
        archived: input.archived ?? false,
        forward_query: input.forward_query ?? true,
        crawlable: input.crawlable ?? false,
      };
      let row: LinkRow | null = null;
      if (input.slug !== undefined) {
        row = await insert(ws, values, input.slug);
        if (!row) throw domainError("slug_taken", `the slug '${input.slug}' is already in use${domain ? ` on ${domain}` : ""}`, "slug");
      } else {
        // The UNIQUE constraint is the collision check; a clash just draws again.
        for (let i = 0; i < CODE_ATTEMPTS && !row; i++) row = await insert(ws, values, randomCode());
        if (!row) throw domainError("code_space_exhausted", "could not allocate a short code; retry");
      }
      if (opts.publish !== false) await publish(row);
      return row;
    },

    /** Applies a partial update; slug/domain changes move the edge key. */
    async update(ws: number, id: number, patch: LinkUpdate): Promise<LinkRow> {
      const urls = await safeUrls(destinationsOf(patch));
      const domain = patch.domain === undefined ? undefined : await workspaceDomain(ws, patch.domain);
      const passwordHash = patch.password === undefined ? undefined : patch.password === null ? null : await hashPassword(patch.password);
      let previous: LinkRow | undefined;
      let row: LinkRow;
      try {
        row = await sql.begin(async (tx) => {
          const [cur] = await tx<LinkRow[]>`SELECT * FROM links WHERE id = ${id} AND workspace_id = ${ws} FOR UPDATE`;
          if (!cur) throw domainError("not_found", "no such link in this workspace");
          previous = cur;
          const has = <K extends keyof LinkUpdate>(k: K) => patch[k] !== undefined;
          const next = {
            domain: domain ?? cur.domain,
            code: patch.slug ?? cur.code,
            url: has("url") ? urls.get("url")! : cur.url,
            redirect_status: patch.redirect_status ?? cur.redirect_status,
            title: has("title") ? patch.title! : cur.title,
            tags: patch.tags ? [...new Set(patch.tags)] : cur.tags,
            expires_at: has("expires_at") ? (patch.expires_at ? new Date(patch.expires_at) : null) : cur.expires_at,
            expired_url: has("expired_url") ? (patch.expired_url ? urls.get("expired_url")! : null) : cur.expired_url,
            max_clicks: has("max_clicks") ? (patch.max_clicks === null ? null : String(patch.max_clicks)) : cur.max_clicks,
            password_hash: passwordHash === undefined ? cur.password_hash : passwordHash,
            targeting: patch.targeting ? withSafeTargeting(patch.targeting, urls)! : cur.targeting,
            utm: patch.utm ?? cur.utm,
            archived: patch.archived ?? cur.archived,
            forward_query: patch.forward_query ?? cur.forward_query,
            crawlable: patch.crawlable ?? cur.crawlable,
          };
          // A link moved to another domain: its destinations (old ones included) must not be on a
          // verified domain now, least of all the new one (it would redirect to itself).
          if (next.domain !== cur.domain) {
            const hosts = new Map<string, string>();
            for (const { field, raw } of destinationsOf(next)) {
              const r = checkUrl(raw);
              if (r.ok && !hosts.has(r.host)) hosts.set(r.host, field);
            }
            await noVerifiedDomain(tx, hosts);
          }
          // A new limit starts over: the enforcer sets limit_reached_at again if it is reached.
          const limitChanged = has("max_clicks") && next.max_clicks !== cur.max_clicks;
          const [updated] = await tx<LinkRow[]>`
            UPDATE links SET domain = ${next.domain}, code = ${next.code}, url = ${next.url},
              redirect_status = ${next.redirect_status}, title = ${next.title}, tags = ${tx.array(next.tags)}::text[],
              expires_at = ${next.expires_at}, expired_url = ${next.expired_url}, max_clicks = ${next.max_clicks},
              password_hash = ${next.password_hash}, targeting = ${tx.json(next.targeting as unknown as JSONValue)},
              utm = ${tx.json(next.utm)}, archived = ${next.archived}, forward_query = ${next.forward_query}, crawlable = ${next.crawlable},
              limit_reached_at = CASE WHEN ${limitChanged} THEN NULL ELSE limit_reached_at END,
              updated_at = now()
            WHERE id = ${id} AND workspace_id = ${ws}
            RETURNING *, (SELECT coalesce(sum(lc.clicks), 0)::bigint FROM link_clicks lc WHERE lc.link_id = links.id) AS clicks`;
          await enqueueLinkEvent(tx, ws, "link.updated", presentLink(updated!, shortBaseUrl));
          return updated!;
        });
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw domainError("slug_taken", "that slug is already in use on that domain", "slug");
        throw err;
      }
      await publish(row, previous);
      return row;
    },

    /** Hard delete (its clicks stay); removes the edge key. */
    async remove(ws: number, id: number): Promise<LinkRow> {
      const row = await sql.begin(async (tx) => {
        const [r] = await tx<LinkRow[]>`DELETE FROM links WHERE id = ${id} AND workspace_id = ${ws}
          RETURNING *, (SELECT coalesce(sum(lc.clicks), 0)::bigint FROM link_clicks lc WHERE lc.link_id = links.id) AS clicks`;
        if (!r) throw domainError("not_found", "no such link in this workspace");
        await enqueueLinkEvent(tx, ws, "link.deleted", presentLink(r, shortBaseUrl));
        return r;
      });
      await edge.remove(row.domain, row.code);
      if (row.crawlable) await edge.robots?.(row.domain);
      return row;
    },

    publish,

    /**
     * One page of the workspace's links, keyset-paginated: by creation time, or by clicks (one
     * query a page: each link's count is summed from link_clicks, so a page costs O(links of the
     * workspace); counts move between pages, so a link may show twice or not at all when it
     * gained clicks meanwhile, as in any live ranking).
     */
    async list(ws: number, q: ListQuery): Promise<{ rows: LinkRow[]; next_cursor: string | null }> {
      const asc = !q.sort.startsWith("-");
      const byClicks = q.sort.endsWith("clicks");
      const cursor = q.cursor ? decodeCursor(q.cursor, q.sort) : null;
      const after = !cursor
        ? sql``
        : byClicks
          ? asc
            ? sql`WHERE (clicks, id) > (${cursor.c!}, ${cursor.i})`
            : sql`WHERE (clicks, id) < (${cursor.c!}, ${cursor.i})`
          : asc
            ? sql`WHERE (created_at, id) > (${cursor.t}::text::timestamptz, ${cursor.i})`
            : sql`WHERE (created_at, id) < (${cursor.t}::text::timestamptz, ${cursor.i})`;
      const order = byClicks ? (asc ? sql`clicks ASC, id ASC` : sql`clicks DESC, id DESC`) : asc ? sql`created_at ASC, id ASC` : sql`created_at DESC, id DESC`;
      const rows = await sql<(LinkRow & { cursor_ts: string })[]>`
        SELECT * FROM (
          SELECT *, ${clicksColumn}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts FROM links
          WHERE workspace_id = ${ws} ${filters(q)}
        ) links ${after}
        ORDER BY ${order}
        LIMIT ${q.limit + 1}`;
      const more = rows.length > q.limit;
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return { rows: page, next_cursor: more && last ? encodeCursor({ t: last.cursor_ts, i: Number(last.id), s: q.sort, ...(byClicks ? { c: Number(last.clicks) } : {}) }) : null };
    },

    /** Every matching link, oldest first, in batches (for the CSV export). */
    async *all(ws: number, q: Omit<ListQuery, "limit" | "cursor" | "sort">): AsyncGenerator<LinkRow[]> {
      const cursor = sql<LinkRow[]>`SELECT * FROM links WHERE workspace_id = ${ws} ${filters(q)} ORDER BY created_at, id`.cursor(500);
      for await (const batch of cursor) yield batch;
    },
  };


}

export type LinkStore = ReturnType<typeof linkStore>;
