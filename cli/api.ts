/**
 * The CLI's HTTP calls to the ingest API: one function per endpoint, nothing else talks HTTP.
 * The types are the CLI's view of the responses (the fields it prints); a client generated
 * from /openapi.json can replace this module without touching the commands.
 */

/** The API answered with an error status; `body` is its JSON (`{error:{status,code,message}}`). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`API error ${status}`);
  }
}

/** The API could not be reached at all. */
export class Unreachable extends Error {}

export interface LinkWrite {
  url?: string;
  slug?: string;
  domain?: string;
  title?: string | null;
  tags?: string[];
  redirect_status?: number;
  expires_at?: string | null;
  expired_url?: string | null;
  max_clicks?: number | null;
  password?: string | null;
  archived?: boolean;
}
export interface Link {
  id: number;
  code: string;
  domain: string;
  url: string;
  short_url: string;
  [field: string]: unknown;
}
export interface LinkList {
  items: Link[];
  next_cursor: string | null;
}
export interface ListQuery {
  q?: string;
  tag?: string;
  domain?: string;
  archived?: string;
  limit?: number;
  cursor?: string;
}
export interface ItemResult {
  index: number;
  status: number;
  link?: Link;
  error?: { status: number; code: string; message: string; field?: string };
}
export interface ImportResult {
  format: string;
  created: number;
  failed: number;
  results: ItemResult[];
}
export interface StatsQuery {
  link?: number;
  domain?: string;
  tag?: string;
  from?: string;
  to?: string;
  interval?: string;
  tz?: string;
  group_by?: string;
  bots?: string;
  limit?: number;
}
interface Counts {
  clicks: number;
  visitors: number;
}
export interface Stats {
  from: string;
  to: string;
  interval: string;
  tz: string;
  group_by: string | null;
  links: number;
  totals: Counts;
  series: (Counts & { t: string })[];
  breakdown: (Counts & { value: string })[] | null;
}
export interface Domain {
  id: number;
  hostname: string;
  verified: boolean;
  verification?: { instructions: string };
  [field: string]: unknown;
}
type Row = Record<string, unknown>;

export interface ApiOptions {
  baseUrl: string;
  /** Asked for on the first request only, so `--help` works without a key. */
  key: () => string;
}

export function apiClient({ baseUrl, key }: ApiOptions) {
  const base = baseUrl.replace(/\/$/, "");

  async function send(method: string, path: string, body?: { json: unknown } | { csv: string }): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${key()}` };
    let payload: string | undefined;
    if (body && "json" in body) [headers["content-type"], payload] = ["application/json", JSON.stringify(body.json)];
    if (body && "csv" in body) [headers["content-type"], payload] = ["text/csv", body.csv];
    const res = await fetch(base + path, { method, headers, body: payload }).catch((err) => {
      throw new Unreachable(`cannot reach ${base}: ${String(err)}`);
    });
    if (!res.ok) {
      const text = await res.text();
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        // Not the API's own error (a proxy's page, say): still one JSON line on stderr.
        data = { error: { status: res.status, code: "http_error", message: text.slice(0, 500) } };
      }
      throw new ApiFailure(res.status, data);
    }
    return res;
  }
  const call = async <T>(method: string, path: string, body?: { json: unknown } | { csv: string }): Promise<T> => {
    const text = await (await send(method, path, body)).text();
    return (text ? JSON.parse(text) : null) as T;
  };
  const query = (q: object) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : "";
  };
  const id = (n: number) => encodeURIComponent(String(n));

  return {
    createLink: (body: LinkWrite & { url: string }) => call<Link>("POST", "/api/links", { json: body }),
    listLinks: (q: ListQuery) => call<LinkList>("GET", `/api/links${query(q)}`),
    getLink: (linkId: number) => call<Link>("GET", `/api/links/${id(linkId)}`),
    getLinkByCode: (domain: string, slug: string) => call<Link>("GET", `/api/links/info${query({ domain, slug })}`),
    updateLink: (linkId: number, body: LinkWrite) => call<Link>("PATCH", `/api/links/${id(linkId)}`, { json: body }),
    deleteLink: (linkId: number) => call<Link>("DELETE", `/api/links/${id(linkId)}`),
    linkQr: async (linkId: number, q: { format: "svg" | "png"; size?: number }) =>
      new Uint8Array(await (await send("GET", `/api/links/${id(linkId)}/qr${query(q)}`)).arrayBuffer()),
    importLinks: (csv: string) => call<ImportResult>("POST", "/api/links/import", { csv }),
    stats: (q: StatsQuery) => call<Stats>("GET", `/api/stats${query(q)}`),

    createKey: (body: { name: string; scopes: string[]; requests_per_minute?: number }) => call<Row>("POST", "/api/keys", { json: body }),
    listKeys: () => call<{ items: Row[] }>("GET", "/api/keys"),
    revokeKey: (keyId: number) => call<Row>("DELETE", `/api/keys/${id(keyId)}`),

    addDomain: (hostname: string) => call<Domain>("POST", "/api/domains", { json: { hostname } }),
    listDomains: () => call<{ items: Domain[] }>("GET", "/api/domains"),
    verifyDomain: (domainId: number) => call<Domain>("POST", `/api/domains/${id(domainId)}/verify`),
    deleteDomain: (domainId: number) => call<Domain>("DELETE", `/api/domains/${id(domainId)}`),

    pipeline: () => call<Row>("GET", "/api/pipeline"),
    dlqList: () => call<{ items: Row[] }>("GET", "/api/pipeline/dlq"),
    dlqReplay: (ids?: number[]) => call<Row>("POST", "/api/pipeline/dlq/replay", { json: ids ? { ids } : {} }),
  };
}
export type Api = ReturnType<typeof apiClient>;
