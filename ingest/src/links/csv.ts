import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { UTM_KEYS } from "../../../shared/utm.ts";
import { domainError } from "../errors.ts";
import type { LinkRow } from "./row.ts";
import { shortUrl } from "./store.ts";
import { normaliseHost } from "./url-safety.ts";

/**
 * CSV import and export of links. Import recognises three layouts by their header row:
 *  - linkflow (ours, what the export writes): url, slug, domain, title, tags, redirect_status,
 *    expires_at, expired_url, max_clicks, utm_source … utm_content, archived, forward_query,
 *    crawlable (short_url and created_at are ignored)
 *  - Bitly's export: long_url, title, tags, custom_bitlinks (first custom back-half becomes the
 *    slug; the generated `link` is not kept), created_at (ignored)
 *  - Shlink's export: Long URL, Short code, Title, Tags, Domain, Short URL (ignored)
 * Tags are separated by commas, semicolons or pipes. Empty cells mean "not set".
 */
export type CsvFormat = "linkflow" | "bitly" | "shlink";

export const EXPORT_COLUMNS = [
  "url",
  "slug",
  "domain",
  "title",
  "tags",
  "redirect_status",
  "expires_at",
  "expired_url",
  "max_clicks",
  ...UTM_KEYS,
  "archived",
  "forward_query",
  "crawlable",
  "short_url",
  "created_at",
] as const;

export const MAX_IMPORT_ROWS = 5000;

/**
 * CSV formula injection (OWASP): a spreadsheet opening the export runs a cell that starts with
 * = + - @ (or a tab/CR before one) as a formula — a title like `=HYPERLINK(...)` would; so it may
 * after leading line breaks (and whitespace around them), which it can drop. The export prefixes
 * such cells with a single quote, which spreadsheets show as text; the import takes that quote
 * off again, so an export re-imports unchanged.
 */
const FORMULA_START = /^[=+\-@\t\r]|^\s*[\r\n]\s*[=+\-@]/;
export const csvSafe = (v: string): string => (FORMULA_START.test(v) ? `'${v}` : v);
export const csvUnsafe = (v: string): string => (v.startsWith("'") && FORMULA_START.test(v.slice(1)) ? v.slice(1) : v);

const headerKey = (h: string) => h.trim().toLowerCase().replace(/[\s-]+/g, "_");
const splitTags = (s: string) =>
  s
    .split(/[,;|]/)
    .map((t) => t.trim())
    .filter(Boolean);

function detect(headers: string[]): CsvFormat {
  const h = new Set(headers);
  if (h.has("short_code")) return "shlink";
  if (h.has("long_url")) return "bitly";
  if (h.has("url")) return "linkflow";
  throw domainError("invalid_csv", "unrecognised header row: expected a `url` column (or Bitly's `long_url`, or Shlink's `Long URL` and `Short code`)");
}

/** Last path segment of a short link ("bit.ly/abc", "https://brand.co/x") and its host. */
function backHalf(link: string): { host: string; slug: string } | null {
  const s = link.trim();
  if (!s) return null;
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `https://${s}`);
    const slug = u.pathname.split("/").filter(Boolean).at(-1);
    return slug ? { host: normaliseHost(u.hostname), slug: decodeURIComponent(slug) } : null;
  } catch {
    return null;
  }
}

const bool = (s: string) => (/^(true|1|yes)$/i.test(s) ? true : /^(false|0|no)$/i.test(s) ? false : s);
const num = (s: string) => (/^-?\d+$/.test(s) ? Number(s) : s);
/** ISO 8601 with an offset passes as is; other dates PostgreSQL-style or RFC 2822 are converted. */
const datetime = (s: string) => {
  if (/(Z|[+-]\d\d:?\d\d)$/.test(s)) return s;
  const t = Date.parse(s);
  return Number.isNaN(t) ? s : new Date(t).toISOString();
};

/**
 * Parses an import body into LinkCreate-shaped objects (validated later, item by item).
 * `workspaceDomains`: Bitly and Shlink rows keep their domain only when it is one of these
 * (otherwise the link goes on the primary domain); linkflow rows must name a workspace domain.
 */
export function parseImport(text: string, workspaceDomains: Set<string>): { format: CsvFormat; items: Record<string, unknown>[] } {
  let records: string[][];
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as string[][];
  } catch (err) {
    throw domainError("invalid_csv", `the CSV cannot be parsed: ${(err as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header) throw domainError("invalid_csv", "the CSV is empty");
  if (rows.length === 0) throw domainError("invalid_csv", "the CSV has a header but no rows");
  if (rows.length > MAX_IMPORT_ROWS) throw domainError("too_many_rows", `at most ${MAX_IMPORT_ROWS} rows per import`);
  const keys = header.map(headerKey);
  const format = detect(keys);
  const items = rows.map((cells) => {
    const row: Record<string, string> = {};
    keys.forEach((k, i) => {
      const v = csvUnsafe(cells[i] ?? "");
      if (v !== "" && !(k in row)) row[k] = v;
    });
    const out: Record<string, unknown> = {};
    const keepDomain = (d: string | undefined) => {
      const host = d ? normaliseHost(d) : "";
      if (host && workspaceDomains.has(host)) out.domain = host;
    };
    switch (format) {
      case "linkflow": {
        if (row.url !== undefined) out.url = row.url;
        if (row.slug !== undefined) out.slug = row.slug;
        if (row.domain !== undefined) out.domain = row.domain;
        if (row.title !== undefined) out.title = row.title;
        if (row.tags !== undefined) out.tags = splitTags(row.tags);
        if (row.redirect_status !== undefined) out.redirect_status = num(row.redirect_status);
        if (row.expires_at !== undefined) out.expires_at = datetime(row.expires_at);
        if (row.expired_url !== undefined) out.expired_url = row.expired_url;
        if (row.max_clicks !== undefined) out.max_clicks = num(row.max_clicks);
        if (row.archived !== undefined) out.archived = bool(row.archived);
        if (row.forward_query !== undefined) out.forward_query = bool(row.forward_query);
        if (row.crawlable !== undefined) out.crawlable = bool(row.crawlable);
        const utm: Record<string, string> = {};
        for (const k of UTM_KEYS) if (row[k] !== undefined) utm[k] = row[k]!;
        if (Object.keys(utm).length) out.utm = utm;
        break;
      }
      case "bitly": {
        if (row.long_url !== undefined) out.url = row.long_url;
        if (row.title !== undefined) out.title = row.title;
        if (row.tags !== undefined) out.tags = splitTags(row.tags);
        const custom = row.custom_bitlinks?.split(/[,;|\s]+/).map(backHalf).find(Boolean);
        if (custom) {
          out.slug = custom.slug;
          keepDomain(custom.host);
        }
        break;
      }
      case "shlink": {
        if (row.long_url !== undefined) out.url = row.long_url;
        if (row.short_code !== undefined) out.slug = row.short_code;
        if (row.title !== undefined) out.title = row.title;
        if (row.tags !== undefined) out.tags = splitTags(row.tags);
        keepDomain(row.domain);
        break;
      }
    }
    return out;
  });
  return { format, items };
}

/** CSV lines (no header) for a batch of rows; `header: true` for the first batch. */
export function exportCsv(rows: LinkRow[], shortBaseUrl: string, header: boolean): string {
  const records = rows.map((r) => ({
    url: r.url,
    slug: r.code,
    domain: r.domain,
    title: r.title ?? "",
    tags: r.tags.join("|"),
    redirect_status: r.redirect_status,
    expires_at: r.expires_at ? new Date(r.expires_at).toISOString() : "",
    expired_url: r.expired_url ?? "",
    max_clicks: r.max_clicks ?? "",
    ...Object.fromEntries(UTM_KEYS.map((k) => [k, r.utm?.[k] ?? ""])),
    archived: r.archived ? "true" : "false",
    forward_query: r.forward_query ? "true" : "false",
    crawlable: r.crawlable ? "true" : "false",
    short_url: shortUrl(shortBaseUrl, r.domain, r.code),
    created_at: new Date(r.created_at).toISOString(),
  }));
  const safe = records.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "string" ? csvSafe(v) : v])));
  return stringify(safe, { header, columns: [...EXPORT_COLUMNS] });
}
