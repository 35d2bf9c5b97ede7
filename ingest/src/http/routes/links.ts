import { createRoute, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "pino";
import { errorResponses, json, okHeaders, type ErrorStatus } from "../api-router.ts";
import { requireScope } from "../auth.ts";
import { exportCsv, parseImport } from "../../links/csv.ts";
import type { Sql } from "../../db/connect.ts";
import { isDomainError } from "../../errors.ts";
import { ApiError, domainErrorResponse } from "../errors.ts";
import { presentLink, type LinkStore } from "../../links/store.ts";
import {
  BulkRequestSchema,
  BulkResultSchema,
  ExportQuerySchema,
  IdParamSchema,
  ImportResultSchema,
  InfoQuerySchema,
  LinkCreateSchema,
  LinkListSchema,
  LinkSchema,
  LinkUpdateSchema,
  ListQuerySchema,
  QrQuerySchema,
  type Link,
} from "../../links/schema.ts";
import { bearerSecurity, createRouter } from "../openapi.ts";
import { qrPng, qrSvg, qrTarget } from "../../links/qr.ts";

const MAX_IMPORT_BYTES = 5 * 1024 * 1024;
/** Items of a bulk request or import processed at once (each is a few queries and an edge push). */
const BULK_CONCURRENCY = 8;

const errors = (...statuses: ErrorStatus[]) => errorResponses(...statuses, ERROR_TEXT);
const ERROR_TEXT: Partial<Record<ErrorStatus, string>> = {
  400: "invalid input (invalid_body, invalid_query, unsafe_url, unknown_domain…), naming the field",
  401: "no or unknown API key",
  403: "the key lacks the scope",
  404: "no such link in this workspace",
  409: "the slug is taken on that domain",
  413: "the body is too large",
  415: "unsupported content type",
  429: "rate limited (Retry-After)",
};
const tags = ["links"];

type ItemResult = z.infer<typeof BulkResultSchema>["results"][number];

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface LinkRoutesDeps {
  sql: Sql;
  store: LinkStore;
  shortBaseUrl: string;
  log: Logger;
}

/** /api/links: CRUD, list, lookup by code, bulk, CSV import/export, QR codes. */
export function linkRoutes({ sql, store, shortBaseUrl, log }: LinkRoutesDeps) {
  const read = requireScope(sql, "links:read");
  const write = requireScope(sql, "links:write");
  const present = (r: Parameters<typeof presentLink>[0]): Link => presentLink(r, shortBaseUrl);

  /**
   * Creates each item on its own: one bad item never fails the others. Items run a few at a
   * time, so a slug repeated within the batch is settled up front: the first occurrence takes
   * it, the later ones get 409 (not whichever insert happened to commit first).
   */
  async function createMany(ws: number, items: unknown[]) {
    const firstOf = new Map<string, number>();
    const slugKey = (d: { slug?: string; domain?: string }) => (d.slug === undefined ? undefined : `${d.domain ?? ""}\n${d.slug}`);
    items.forEach((item, index) => {
      const parsed = LinkCreateSchema.safeParse(item);
      const key = parsed.success ? slugKey(parsed.data) : undefined;
      if (key !== undefined && !firstOf.has(key)) firstOf.set(key, index);
    });
    const results = await mapLimit(items, BULK_CONCURRENCY, async (item, index): Promise<ItemResult> => {
      const parsed = LinkCreateSchema.safeParse(item);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path.map(String).join(".");
        return { index, status: 400, error: { status: 400, code: "invalid_body", message: field ? `${field}: ${issue.message}` : issue.message, ...(field ? { field } : {}) } };
      }
      const key = slugKey(parsed.data);
      if (key !== undefined && (firstOf.get(key) ?? index) !== index)
        return { index, status: 409, error: { status: 409, code: "slug_taken", message: `the slug '${parsed.data.slug}' is already in use (row ${firstOf.get(key)})`, field: "slug" } };
      try {
        return { index, status: 201, link: present(await store.create(ws, parsed.data)) };
      } catch (err) {
        if (isDomainError(err)) {
          const { status, body } = domainErrorResponse(err);
          return { index, status, error: body.error };
        }
        log.error({ err, index }, "bulk item failed");
        return { index, status: 500, error: { status: 500, code: "internal", message: "internal error; retry this item" } };
      }
    });
    const created = results.filter((r) => r.status === 201).length;
    return { created, failed: results.length - created, results };
  }

  const app = createRouter();

  // Static paths first: they must win over /{id}.
  app.openapi(
    createRoute({
      method: "get",
      path: "/info",
      operationId: "getLinkByCode",
      tags,
      summary: "Look a link up by its short code",
      security: bearerSecurity,
      middleware: [read] as const,
      request: { query: InfoQuerySchema },
      responses: { 200: json(LinkSchema, "the link"), ...errors(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      const { domain, slug } = c.req.valid("query");
      return c.json(present(await store.getByCode(c.var.principal.workspaceId, domain, slug)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/bulk",
      operationId: "bulkCreateLinks",
      tags,
      summary: "Create up to 1,000 links; a result per item",
      security: bearerSecurity,
      middleware: [write] as const,
      request: { body: { content: { "application/json": { schema: BulkRequestSchema } }, required: true } },
      responses: { 200: json(BulkResultSchema, "per-item results, in request order (status 201 with the link, or the error)"), ...errors(400, 401, 403, 415, 429) },
    }),
    async (c) => c.json(await createMany(c.var.principal.workspaceId, c.req.valid("json").links), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/import",
      operationId: "importLinks",
      tags,
      summary: "Import links from CSV (ours, Bitly's or Shlink's export)",
      description:
        "Body: text/csv with a header row (at most 5,000 rows, 5 MiB). Layouts, recognised by the header: " +
        "linkflow (`url, slug, domain, title, tags, redirect_status, expires_at, expired_url, max_clicks, utm_source…utm_content, archived`; what GET /api/links/export writes), " +
        "Bitly (`long_url, title, tags, custom_bitlinks, …`), Shlink (`Long URL, Short code, Title, Tags, Domain, Short URL`). " +
        "Tags are separated by `,` `;` or `|`. Each row is created on its own (results by row index).",
      security: bearerSecurity,
      middleware: [write, bodyLimit({ maxSize: MAX_IMPORT_BYTES, onError: () => { throw new ApiError(413, "too_large", "the CSV is over 5 MiB"); } })] as const,
      request: { body: { content: { "text/csv": { schema: z.string() } }, required: true } },
      responses: { 200: json(ImportResultSchema, "per-row results"), ...errors(400, 401, 403, 413, 415, 429) },
    }),
    async (c) => {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (!["text/csv", "text/plain", "application/csv"].includes(type)) throw new ApiError(415, "unsupported_media_type", "send the CSV as text/csv");
      const ws = c.var.principal.workspaceId;
      const domains = new Set((await sql<{ hostname: string }[]>`SELECT hostname FROM domains WHERE workspace_id = ${ws}`).map((d) => d.hostname));
      const { format, items } = parseImport(await c.req.text(), domains);
      return c.json({ format, ...(await createMany(ws, items)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/export",
      operationId: "exportLinks",
      tags,
      summary: "Export links as CSV (re-importable)",
      description: "Columns: url, slug, domain, title, tags (| separated), redirect_status, expires_at, expired_url, max_clicks, utm_source…utm_content, archived, short_url, created_at. Passwords and targeting are not exported.",
      security: bearerSecurity,
      middleware: [read] as const,
      request: { query: ExportQuerySchema },
      responses: { 200: { description: "the CSV, oldest first", headers: okHeaders, content: { "text/csv": { schema: z.string() } } }, ...errors(400, 401, 403, 429) },
    }),
    (c) => {
      const q = c.req.valid("query");
      const batches = store.all(c.var.principal.workspaceId, q);
      let first = true;
      const enc = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { value, done } = await batches.next();
            if (done) {
              if (first) controller.enqueue(enc.encode(exportCsv([], shortBaseUrl, true)));
              return controller.close();
            }
            controller.enqueue(enc.encode(exportCsv(value, shortBaseUrl, first)));
            first = false;
          } catch (err) {
            log.error({ err }, "export failed");
            controller.error(err);
          }
        },
        async cancel() {
          await batches.return(undefined);
        },
      });
      return c.body(stream, 200, { "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": 'attachment; filename="links.csv"' });
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      operationId: "createLink",
      tags,
      summary: "Create a link",
      security: bearerSecurity,
      middleware: [write] as const,
      request: { body: { content: { "application/json": { schema: LinkCreateSchema } }, required: true } },
      responses: { 201: json(LinkSchema, "the new link (already pushed to the edge)"), ...errors(400, 401, 403, 409, 415, 429) },
    }),
    async (c) => c.json(present(await store.create(c.var.principal.workspaceId, c.req.valid("json"))), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listLinks",
      tags,
      summary: "List links (cursor pagination, search, filters)",
      security: bearerSecurity,
      middleware: [read] as const,
      request: { query: ListQuerySchema },
      responses: { 200: json(LinkListSchema, "one page"), ...errors(400, 401, 403, 429) },
    }),
    async (c) => {
      const { rows, next_cursor } = await store.list(c.var.principal.workspaceId, c.req.valid("query"));
      return c.json({ items: rows.map(present), next_cursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      operationId: "getLink",
      tags,
      summary: "Get a link",
      security: bearerSecurity,
      middleware: [read] as const,
      request: { params: IdParamSchema },
      responses: { 200: json(LinkSchema, "the link"), ...errors(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json(present(await store.get(c.var.principal.workspaceId, c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{id}",
      operationId: "updateLink",
      tags,
      summary: "Change a link",
      security: bearerSecurity,
      middleware: [write] as const,
      request: { params: IdParamSchema, body: { content: { "application/json": { schema: LinkUpdateSchema } }, required: true } },
      responses: { 200: json(LinkSchema, "the changed link (already pushed to the edge)"), ...errors(400, 401, 403, 404, 409, 415, 429) },
    }),
    async (c) => c.json(present(await store.update(c.var.principal.workspaceId, c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      operationId: "deleteLink",
      tags,
      summary: "Delete a link (its clicks stay)",
      security: bearerSecurity,
      middleware: [write] as const,
      request: { params: IdParamSchema },
      responses: { 200: json(LinkSchema, "the deleted link (removed from the edge)"), ...errors(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json(present(await store.remove(c.var.principal.workspaceId, c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{id}/qr",
      operationId: "getLinkQr",
      tags,
      summary: "QR code of the short URL (with ?qr=1, so the worker counts QR visits)",
      security: bearerSecurity,
      middleware: [read] as const,
      request: { params: IdParamSchema, query: QrQuerySchema },
      responses: {
        200: {
          description: "the QR code",
          headers: okHeaders,
          content: { "image/svg+xml": { schema: z.string() }, "image/png": { schema: z.string().openapi({ format: "binary" }) } },
        },
        ...errors(400, 401, 403, 404, 429),
      },
    }),
    async (c) => {
      const row = await store.get(c.var.principal.workspaceId, c.req.valid("param").id);
      const { format, size } = c.req.valid("query");
      const text = qrTarget(present(row).short_url);
      const headers = { "Cache-Control": "private, max-age=300" };
      if (format === "png") return c.body(new Uint8Array(await qrPng(text, size)), 200, { ...headers, "Content-Type": "image/png" });
      return c.body(await qrSvg(text, size), 200, { ...headers, "Content-Type": "image/svg+xml" });
    },
  );

  return app;
}
