import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, buildSpec } from "../scripts/openapi.ts";
import { startDnsServer } from "./dns-server.ts";
import { startStack, type Stack } from "./helpers.ts";

/**
 * The spec is the contract: /openapi.json is valid OpenAPI 3.1, lists every /api route of the
 * app with an operationId and a summary, and real responses of every operation it lists
 * (successes and errors) match the schema and headers it declares for their status and content
 * type. An operation added to the spec without a request here fails the coverage check.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
let s: Stack;
let dns: Awaited<ReturnType<typeof startDnsServer>>;
let spec: Json;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
const exercised = new Set<string>(); // "METHOD /template" with a 2xx checked
const checked: string[] = [];

beforeAll(async () => {
  dns = await startDnsServer();
  // With the pipeline: ClickHouse (chDB) answers the stats routes.
  s = await startStack({ edge: false, pipeline: true, env: { DNS_RESOLVER: dns.address } });
  await s.sql`UPDATE api_keys SET requests_per_minute = 1000000`;
  const [ws] = await s.sql`SELECT min(id) AS id FROM workspaces`;
  await s.sql`INSERT INTO domains (workspace_id, hostname, verified_at) VALUES (${ws!.id}, 'spec.brand.test', now())`;
  spec = await (await fetch(`${s.ingest.url}/openapi.json`)).json();
}, 60_000);
afterAll(async () => {
  await s.close();
  await dns.close();
});

/** The operation whose path template matches a concrete path. */
function operation(method: string, path: string): { template: string; op: Json } {
  for (const [template, item] of Object.entries<Json>(spec.paths)) {
    const re = new RegExp("^" + template.replace(/\{[^/]+\}/g, "[^/]+") + "$");
    if (re.test(path) && item[method.toLowerCase()]) {
      // A static path wins over a template (/api/links/info vs /api/links/{id}).
      const exact = spec.paths[path]?.[method.toLowerCase()];
      return exact ? { template: path, op: exact } : { template, op: item[method.toLowerCase()] };
    }
  }
  throw new Error(`${method} ${path} is not in the spec`);
}

function validatorFor(key: string, schema: Json) {
  let v = validators.get(key);
  if (!v) {
    // Refs are "#/components/…": compile the schema together with the spec's components.
    v = ajv.compile({ ...schema, components: spec.components });
    validators.set(key, v);
  }
  return v;
}

/** Sends a request and checks the response against the spec; returns the response and body. */
async function call(method: string, path: string, init: { body?: string; key?: string | null; type?: string } = {}) {
  const headers: Record<string, string> = {};
  if (init.key !== null) headers.Authorization = `Bearer ${init.key ?? s.adminKey}`;
  if (init.body !== undefined) headers["content-type"] = init.type ?? "application/json";
  const res = await fetch(s.ingest.url + path, { method, headers, body: init.body });
  const url = new URL(res.url);
  const { template, op } = operation(method, url.pathname);
  const where = `${method} ${template} → ${res.status}`;
  const declared = op.responses[String(res.status)];
  expect(declared, `${where}: status not declared`).toBeDefined();
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const media = declared.content?.[type];
  expect(media, `${where}: content type ${type} not declared`).toBeDefined();
  // The headers the response carries are the ones the spec declares for it.
  const documented = Object.keys(declared.headers ?? {}).map((h) => h.toLowerCase());
  expect(res.headers.get("x-request-id"), `${where}: X-Request-Id`).toBeTruthy();
  for (const h of ["x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "retry-after"])
    if (res.headers.has(h)) expect(documented, `${where}: ${h} not declared`).toContain(h);
  let value: Json;
  if (type === "application/json") {
    value = await res.json();
    const v = validatorFor(`${template} ${method} ${res.status} ${type}`, media.schema);
    expect(v(value), `${where}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 500)}`).toBe(true);
  } else if (type.startsWith("text/") || type === "image/svg+xml") {
    value = await res.text();
    expect(media.schema.type).toBe("string");
  } else {
    value = Buffer.from(await res.arrayBuffer());
    expect(media.schema).toMatchObject({ type: "string", format: "binary" });
  }
  if (res.status < 300) exercised.add(`${method} ${template}`);
  checked.push(where);
  return { res, body: value };
}

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document with the bearer scheme and the error schema", async () => {
    expect(spec.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(spec);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(spec.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(spec.components.schemas.Error.properties.error.required).toEqual(expect.arrayContaining(["status", "code", "message"]));
    for (const [path, item] of Object.entries<Json>(spec.paths))
      for (const [method, op] of Object.entries<Json>(item)) {
        expect(op.security, `${method} ${path}`).toEqual([{ bearer: [] }]);
        const errors = Object.keys(op.responses).filter((st) => Number(st) >= 400);
        expect(errors, `${method} ${path}`).toContain("401");
      }
  });

  it("lists every /api route of the app, each with an operationId and a summary", async () => {
    const { app, close } = await buildApp();
    const routes = new Set(app.routes.filter((r) => r.path.startsWith("/api/") && r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`));
    await close();
    const documented = Object.entries<Json>(spec.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`));
    expect(routes.size).toBeGreaterThan(25);
    expect([...routes].filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((r) => !routes.has(r))).toEqual([]);
    const ids: string[] = [];
    for (const [path, item] of Object.entries<Json>(spec.paths))
      for (const [method, op] of Object.entries<Json>(item)) {
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        ids.push(op.operationId);
      }
    expect(new Set(ids).size).toBe(ids.length);
    expect(spec.servers).toEqual([expect.objectContaining({ url: "/" })]);
    expect(spec.info.license.name).toBeTruthy();
    // The stream is documented as what it is.
    expect(Object.keys(spec.paths["/api/stats/stream"].get.responses["200"].content)).toEqual(["text/event-stream"]);
  });

  it("is the spec scripts/openapi.ts builds (npm run gen:api, lint:api)", async () => {
    expect(await buildSpec()).toEqual(spec);
  });

  it("serves the reference at /docs from this server, under the dashboard's CSP", async () => {
    const res = await fetch(`${s.ingest.url}/docs`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline scripts
    for (const src of html.match(/(?<=src=")[^"]+/g)!) expect((await fetch(s.ingest.url + src)).status).toBe(200);
  });
});

describe("real responses match the spec", () => {
  it("links", async () => {
    const { body: link } = await call("POST", "/api/links", {
      body: JSON.stringify({ url: "https://example.com/spec", slug: "spec", title: "Spec", tags: ["spec"], password: "pw", expires_at: "2031-01-01T00:00:00Z", utm: { utm_source: "x" }, targeting: [{ os: ["iOS"], url: "https://example.com/ios" }] }),
    });
    await call("POST", "/api/links", { body: JSON.stringify({ url: "https://example.com/plain", domain: "spec.brand.test" }) });
    await call("GET", "/api/links?limit=1");
    await call("GET", "/api/links?q=spec&tag=spec&archived=all&sort=created_at");
    await call("GET", "/api/links/info?slug=spec");
    await call("GET", `/api/links/${link.id}`);
    await call("PATCH", `/api/links/${link.id}`, { body: JSON.stringify({ title: null, max_clicks: 3, archived: true }) });
    await call("GET", `/api/links/${link.id}/qr`);
    await call("GET", `/api/links/${link.id}/qr?format=png&size=64`);
    await call("POST", "/api/links/bulk", { body: JSON.stringify({ links: [{ url: "https://example.com/b1" }, { url: "javascript:x" }, { url: "https://example.com/b2", slug: "spec" }, 7] }) });
    await call("POST", "/api/links/import", { body: "url,slug,tags\nhttps://example.com/i1,spec-i1,a|b\nfile:///x,spec-i2,", type: "text/csv" });
    await call("GET", "/api/links/export");
    await call("DELETE", `/api/links/${link.id}`);
    // Errors, in the documented Error schema.
    await call("GET", `/api/links/${link.id}`);
    await call("POST", "/api/links", { body: JSON.stringify({ url: "https://example.com/", slug: "spec-i1" }) });
    await call("POST", "/api/links", { body: JSON.stringify({ url: "javascript:alert(1)" }) });
    await call("POST", "/api/links", { body: "{" });
    await call("POST", "/api/links", { body: "{}", type: "text/plain" });
    await call("GET", "/api/links?limit=0");
    await call("GET", "/api/links/abc");
    await call("GET", "/api/links", { key: null });
    await call("POST", "/api/links/import", { body: "nope\n1", type: "text/csv" });
  });

  it("keys, workspaces, domains", async () => {
    const { body: key } = await call("POST", "/api/keys", { body: JSON.stringify({ name: "reader", scopes: ["links:read"] }) });
    await call("GET", "/api/keys");
    await call("GET", "/api/keys/me");
    await call("POST", "/api/links", { key: key.key, body: JSON.stringify({ url: "https://example.com/" }) }); // 403
    await call("DELETE", `/api/keys/${key.id}`);
    await call("POST", "/api/workspaces", { body: JSON.stringify({ name: "spec" }) });
    const { body: domain } = await call("POST", "/api/domains", { body: JSON.stringify({ hostname: "spec2.brand.example.com" }) });
    await call("POST", "/api/domains", { body: JSON.stringify({ hostname: "169.254.169.254" }) }); // 400
    await call("POST", `/api/domains/${domain.id}/verify`); // 422: no TXT record yet
    dns.txt.set(domain.verification.name, [domain.verification.value]);
    await call("POST", `/api/domains/${domain.id}/verify`);
    await call("GET", "/api/domains");
    await call("DELETE", `/api/domains/${domain.id}`);
    await call("DELETE", `/api/domains/${domain.id}`); // 404
  });

  it("webhooks", async () => {
    const { body: ep } = await call("POST", "/api/webhooks", { body: JSON.stringify({ url: "https://hooks.example.com/spec", events: ["link.created"], description: "spec" }) });
    await call("GET", "/api/webhooks");
    await call("GET", `/api/webhooks/${ep.id}`);
    await call("PATCH", `/api/webhooks/${ep.id}`, { body: JSON.stringify({ events: ["link.created", "link.deleted"] }) });
    await call("POST", `/api/webhooks/${ep.id}/rotate-secret`);
    await call("POST", "/api/links", { body: JSON.stringify({ url: "https://example.com/hooked" }) }); // queues a link.created message
    const { body: log } = await call("GET", `/api/webhooks/${ep.id}/deliveries?limit=10`);
    await call("POST", `/api/webhooks/${ep.id}/deliveries/${log.deliveries[0].id}/replay`);
    await call("POST", `/api/webhooks/${ep.id}/replay`);
    // Errors.
    await call("POST", "/api/webhooks", { body: JSON.stringify({ url: "http://10.0.0.1/hook", events: ["link.created"] }) }); // 400 unsafe_url
    await call("POST", `/api/webhooks/${ep.id}/deliveries/999999/replay`); // 404
    await call("DELETE", `/api/webhooks/${ep.id}`);
    await call("GET", `/api/webhooks/${ep.id}`); // 404
  });

  it("stats, recent clicks, SRE, pipeline", async () => {
    const { body: link } = await call("POST", "/api/links", { body: JSON.stringify({ url: "https://example.com/stats" }) });
    await call("GET", `/api/stats?link=${link.id}&interval=hour&group_by=country`);
    await call("GET", `/api/stats/live?link=${link.id}`);
    const { body: events } = await call("GET", `/api/stats/stream?link=${link.id}&max_seconds=1`);
    expect(events).toContain("event: tick");
    await call("GET", `/api/clicks/recent?link=${link.id}`);
    await call("GET", "/api/sre/edge?interval=day");
    await call("GET", "/api/pipeline");
    await call("GET", `/api/pipeline/lag?since=${new Date(Date.now() - 60_000).toISOString()}`);
    await call("GET", "/api/pipeline/dlq?limit=10");
    await call("POST", "/api/pipeline/dlq/replay", { body: JSON.stringify({ ids: [] }) });
    // Errors.
    await call("GET", "/api/stats?tz=Mars/Olympus");
    await call("GET", "/api/stats?link=999999");
    await call("GET", "/api/pipeline/lag?since=yesterday");
    await call("POST", "/api/pipeline/dlq/replay", { body: '{"ids":"all"}' });
    const { body: reader } = await call("POST", "/api/keys", { body: JSON.stringify({ name: "stats-reader", scopes: ["stats:read"] }) });
    await call("GET", "/api/pipeline", { key: reader.key }); // 403: operator only
    await call("GET", "/api/clicks/recent", { key: reader.key }); // 400: link is required
  }, 30_000);

  it("the checks have teeth: the Link schema refuses extra fields such as a password hash", () => {
    const v = ajv.compile({ $ref: "#/components/schemas/Link", components: spec.components });
    const { body: _b, ...valid } = { body: 0, id: 1, code: "c", domain: "", short_url: "http://x/c", url: "https://e.com/", redirect_status: 302, title: null, tags: [], expires_at: null, expired_url: null, max_clicks: null, has_password: false, targeting: [], utm: {}, archived: false, forward_query: true, crawlable: false, limit_reached_at: null, clicks: 0, created_at: "2026-01-01T00:00:00.000Z", updated_at: "2026-01-01T00:00:00.000Z" };
    expect(v(valid), ajv.errorsText(v.errors)).toBe(true);
    expect(v({ ...valid, password_hash: "pbkdf2-sha256$1$a$b" })).toBe(false);
    expect(v({ ...valid, redirect_status: 303 })).toBe(false);
  });

  it("covered every operation of the spec with a successful response", () => {
    const all = Object.entries<Json>(spec.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(all.filter((op) => !exercised.has(op))).toEqual([]);
    expect(checked.length).toBeGreaterThan(30);
  });
});
