/**
 * The CLI's HTTP calls to the ingest API: one function per endpoint, nothing else talks HTTP.
 * They go through the client typed by the OpenAPI spec (shared/api-types.ts, `npm run gen:api`),
 * as the dashboard's do: paths, parameters, bodies and responses are the spec's, so a drift
 * between spec and server (test/openapi-lint.test.ts guards the spec) breaks the CLI's types or its tests.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../shared/api-types.ts";

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

type Schemas = components["schemas"];
export type Link = Schemas["Link"];
export type LinkCreate = Schemas["LinkCreate"];
export type LinkUpdate = Schemas["LinkUpdate"];
export type Stats = Schemas["Stats"];
export type ListQuery = NonNullable<paths["/api/links"]["get"]["parameters"]["query"]>;
export type QrQuery = NonNullable<paths["/api/links/{id}/qr"]["get"]["parameters"]["query"]>;
export type StatsQuery = NonNullable<paths["/api/stats"]["get"]["parameters"]["query"]>;
export type KeyCreate = paths["/api/keys"]["post"]["requestBody"]["content"]["application/json"];

/**
 * Compile-time proof that a runtime list (of option choices, say) holds exactly the members of a
 * union from the spec: `Assert<Exactly<Union, typeof LIST>>` fails tsc when either side changes.
 */
export type Exactly<Union, List extends readonly unknown[]> = [Union] extends [List[number]] ? ([List[number]] extends [Union] ? true : false) : false;
export type Assert<T extends true> = T;

export interface ApiOptions {
  baseUrl: string;
  /** Asked for on the first request only, so `--help` works without a key. */
  key: () => string;
}

/** The data of a client call, or an ApiFailure carrying the API's JSON error. */
async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response: res } = await call;
  if (res.ok) return data as T;
  // openapi-fetch leaves a body that is not JSON (a proxy's page, say) as text: still one JSON line on stderr.
  const body = typeof error === "string" || error === undefined ? { error: { status: res.status, code: "http_error", message: (error ?? "").slice(0, 500) } } : error;
  throw new ApiFailure(res.status, body);
}

export function apiClient({ baseUrl, key }: ApiOptions) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${key()}`);
      return request;
    },
    // Only a failed fetch lands here (no response at all).
    onError({ error, options }) {
      return new Unreachable(`cannot reach ${options.baseUrl}: ${String(error)}`);
    },
  });
  const id = (n: number) => ({ path: { id: n } });

  return {
    createLink: (body: LinkCreate) => ok(client.POST("/api/links", { body })),
    listLinks: (query: ListQuery) => ok(client.GET("/api/links", { params: { query } })),
    getLink: (linkId: number) => ok(client.GET("/api/links/{id}", { params: id(linkId) })),
    getLinkByCode: (domain: string, slug: string) => ok(client.GET("/api/links/info", { params: { query: { domain, slug } } })),
    updateLink: (linkId: number, body: LinkUpdate) => ok(client.PATCH("/api/links/{id}", { params: id(linkId), body })),
    deleteLink: (linkId: number) => ok(client.DELETE("/api/links/{id}", { params: id(linkId) })),
    // The image's bytes as sent, SVG too (written to stdout or a file unchanged).
    linkQr: async (linkId: number, query: QrQuery) =>
      new Uint8Array(await ok(client.GET("/api/links/{id}/qr", { params: { ...id(linkId), query }, parseAs: "arrayBuffer" }))),
    importLinks: (csv: string) =>
      ok(client.POST("/api/links/import", { body: csv, bodySerializer: (text: string) => text, headers: { "content-type": "text/csv" } })),
    stats: (query: StatsQuery) => ok(client.GET("/api/stats", { params: { query } })),

    createKey: (body: KeyCreate) => ok(client.POST("/api/keys", { body })),
    listKeys: () => ok(client.GET("/api/keys")),
    revokeKey: (keyId: number) => ok(client.DELETE("/api/keys/{id}", { params: id(keyId) })),

    addDomain: (hostname: string) => ok(client.POST("/api/domains", { body: { hostname } })),
    listDomains: () => ok(client.GET("/api/domains")),
    verifyDomain: (domainId: number) => ok(client.POST("/api/domains/{id}/verify", { params: id(domainId) })),
    deleteDomain: (domainId: number) => ok(client.DELETE("/api/domains/{id}", { params: id(domainId) })),

    pipeline: () => ok(client.GET("/api/pipeline")),
    dlqList: () => ok(client.GET("/api/pipeline/dlq")),
    dlqReplay: (ids?: number[]) => ok(client.POST("/api/pipeline/dlq/replay", { body: ids ? { ids } : {} })),
  };
}
export type Api = ReturnType<typeof apiClient>;
