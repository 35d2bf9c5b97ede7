import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import { clickEvent, seedLinks } from "../fixtures.ts";
import { KEYS, startStack, type Stack } from "../helpers.ts";

/**
 * Property-based fuzzing of the beacon endpoint, the link API and the stats API (issue 7, "Bad
 * input"): ≥ 10,000 generated malformed bodies, headers and query strings per endpoint, sent to the
 * real ingest over loopback (keep-alive, 32 in flight). Every answer must be a 4xx with the JSON
 * error body `{ error: { status, code, message } }` (status = the HTTP status), and no row may
 * be written. Cases come from `fc.sample` with a fixed seed (reproducible; FUZZ_SEED overrides).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 7);
const N = Number(process.env.FUZZ_RUNS ?? 10_000);
// 10,000 requests each: ~10 s alone, 30 s and more beside the other test files on two cores (a
// bound for a stuck run, not a timing assertion).
const FUZZ_TIMEOUT_MS = 120_000;

let s: Stack;
beforeAll(async () => {
  // Thousands of bad keys from one address: the failed-auth throttle (test/security/failed-auth.test.ts) is off here.
  s = await startStack({ edge: false, env: { AUTH_FAILURES_PER_MINUTE: "0" } });
  await s.sql`UPDATE api_keys SET requests_per_minute = 100000000`;
});
afterAll(() => s.close());

interface Case {
  label: string;
  path: string;
  init: RequestInit;
}
const rows = async (table: "clicks" | "links") => Number((await s.sql`SELECT count(*) AS n FROM ${s.sql(table)}`)[0]!.n);

/** Statuses seen by the last `fire` (so a test can check the cases reached validation, not just auth). */
let seen = new Map<number, number>();
/** Sends every case (32 in flight) and returns the ones that broke the contract (with why). */
async function fire(cases: Case[], allow: (status: number) => boolean = (st) => st >= 400 && st < 500) {
  seen = new Map();
  const bad: { label: string; status: number; why: string; body: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      let status = 0;
      let text = "";
      try {
        const res = await fetch(s.ingest.url + c.path, c.init);
        status = res.status;
        seen.set(status, (seen.get(status) ?? 0) + 1);
        text = await res.text();
        if (!allow(status)) throw new Error("status");
        if (!/^application\/json/.test(res.headers.get("content-type") ?? "")) throw new Error("content-type");
        const b = JSON.parse(text);
        const e = b?.error;
        if (!e || e.status !== status || typeof e.code !== "string" || !e.code || typeof e.message !== "string") throw new Error("error body");
      } catch (err) {
        if (bad.length < 10) bad.push({ label: c.label, status, why: (err as Error).message, body: text.slice(0, 200) });
        else bad.length++;
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return bad;
}

// ---- generators ---------------------------------------------------------------------------

const NOT_STRING = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
const NOT_NUMBER = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const HOSTILE = fc.constantFrom(
  "' OR 1=1 --",
  "'; DROP TABLE clicks; --",
  "\u0000",
  "\r\nX-Injected: 1",
  "../../etc/passwd",
  "%00",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "\uD800",
  "𝕏".repeat(600),
  "__proto__",
);
/** Strings that are certainly not `re`-valid formats: arbitrary text plus hostile constants. */
const junkString = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 }), HOSTILE);

type Ev = Record<string, unknown>;
const base = () => clickEvent() as unknown as Ev;

/** One guaranteed-invalid change to a valid click event. */
const badEvent: fc.Arbitrary<Ev> = fc.oneof(
  // a required field missing
  fc.constantFrom("click_id", "short_url", "original_url", "timestamp", "user_agent", "ip_address", "referer", "geo_location", "domain", "code", "link_id", "redirect_status", "cache_tier").map((k) => {
    const e = base();
    delete e[k];
    return e;
  }),
  // a string field with a non-string
  fc.tuple(fc.constantFrom("click_id", "short_url", "original_url", "timestamp", "user_agent", "ip_address", "referer", "domain", "code", "cache_tier"), NOT_STRING).map(([k, v]) => ({ ...base(), [k]: v })),
  // a number field with a non-number, or an out-of-range number
  fc.tuple(fc.constantFrom("link_id", "redirect_status"), NOT_NUMBER).map(([k, v]) => ({ ...base(), [k]: v })),
  fc.oneof(fc.integer({ max: 0 }), fc.double({ min: 0.01, max: 1e6, noInteger: true }), fc.constant(2 ** 60)).map((v) => ({ ...base(), link_id: v })),
  fc.integer().filter((n) => ![301, 302, 307, 308].includes(n)).map((v) => ({ ...base(), redirect_status: v })),
  // format fields with junk
  fc.tuple(fc.constantFrom("click_id", "short_url", "original_url", "timestamp", "ip_address", "cache_tier"), junkString.filter((x) => x !== "")).map(([k, v]) => ({ ...base(), [k]: v })),
  // over-long text
  fc.tuple(fc.constantFrom(["user_agent", 1025], ["referer", 2049], ["domain", 254], ["code", 65]), fc.constantFrom("a", "é", "😀", " ", "\u0001")).map(([[k, n], ch]) => ({ ...base(), [k as string]: ch.repeat(n as number) })),
  // geo: wrong types, out of range, unknown keys
  fc.oneof(NOT_STRING.filter((v) => v === null || typeof v !== "object" || Array.isArray(v)), fc.record({ latitude: fc.double({ min: 90.001, max: 1e9 }) }), fc.record({ longitude: fc.double({ max: -180.001, min: -1e9 }) }), fc.record({ country: fc.string({ minLength: 3 }) }), fc.record({ evil: fc.jsonValue() })).map((g) => ({ ...base(), geo_location: g })),
  // an unknown key (the schema is strict), including prototype tricks
  fc.tuple(fc.oneof(fc.constantFrom("__proto__", "constructor", "admin", "received_at"), fc.string({ minLength: 1 })), fc.jsonValue()).filter(([k]) => !(k in base())).map(([k, v]) => {
    const e = base();
    Object.defineProperty(e, k, { value: v, enumerable: true });
    return e;
  }),
);

/** Guaranteed-malformed beacon bodies (raw strings, signed correctly). */
const beaconBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: badEvent.map((e) => JSON.stringify(e)) },
  // a batch with one bad event among valid ones (all or nothing), an empty batch, a nested one
  { weight: 2, arbitrary: fc.tuple(fc.nat(3), badEvent, fc.nat(3)).map(([a, bad, b]) => JSON.stringify([...Array.from({ length: a }, base), bad, ...Array.from({ length: b }, base)])) },
  { weight: 1, arbitrary: fc.constantFrom("[]", "[[]]", "{}", "null", "0", '""', "true", "[null]", "[{}]") },
  // any JSON value (never a valid event: no click_id uuid)
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null") },
  // not JSON at all, or truncated JSON
  { weight: 2, arbitrary: fc.oneof(fc.string({ minLength: 1 }).filter((x) => { try { JSON.parse(x); return false; } catch { return true; } }), fc.nat(200).map((n) => JSON.stringify(base()).slice(0, n + 1))) },
);

describe("fuzz: POST /v1/clicks", { timeout: FUZZ_TIMEOUT_MS }, () => {
  it(`${N} malformed bodies (correctly signed), signatures and content types → 4xx JSON errors, no rows`, async () => {
    const before = await rows("clicks");
    const bodies = fc.sample(beaconBody, { numRuns: Math.round(N * 0.7), seed: SEED });
    const cases: Case[] = [];
    for (const raw of bodies) {
      cases.push({ label: raw.slice(0, 120), path: "/v1/clicks", init: { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, raw) }, body: raw } });
    }
    // Signatures: a valid body with a fuzzed header (junk, a mutated good one, wrong t, wrong secret).
    const now = Math.floor(Date.now() / 1000);
    const sigs = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 100 }).map((h) => ({ h, t: undefined as number | undefined })),
        fc.tuple(fc.nat(63), fc.constantFrom(..."0123456789abcdef")).map(([i, ch]) => ({ h: `mutate:${i}:${ch}`, t: undefined })),
        fc.integer({ min: -1e6, max: 1e6 }).filter((d) => Math.abs(d) > 300).map((d) => ({ h: "", t: now + d })),
        fc.constantFrom("t=,v1=", "t=1e3,v1=00", "v1=" + "0".repeat(64), `t=${now}`, `t=${now},v1=${"zz".repeat(32)}`, `t=${now},v1=${"0".repeat(66)}`, `t=${now}.5,v1=${"0".repeat(64)}`, `t=-0,v1=${"0".repeat(64)}`).map((h) => ({ h, t: undefined })),
      ),
      { numRuns: Math.round(N * 0.2), seed: SEED },
    );
    for (const { h, t } of sigs) {
      const raw = JSON.stringify(clickEvent());
      let header = h;
      if (t !== undefined) header = await sign(KEYS.beacon, raw, t);
      else if (h.startsWith("mutate:")) {
        const [, i, ch] = h.split(":");
        const good = await sign(KEYS.beacon, raw);
        const at = good.indexOf("v1=") + 3 + Number(i);
        header = good.slice(0, at) + (good[at] === ch ? (ch === "0" ? "1" : "0") : ch) + good.slice(at + 1);
      }
      // fetch refuses header values with CR/LF/NUL; those are a transport error, not a case.
      if (/[\r\n\0]/.test(header) || /[^\x00-\xff]/.test(header)) header = encodeURIComponent(header);
      cases.push({ label: `sig ${JSON.stringify(header)}`, path: "/v1/clicks", init: { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: header }, body: raw } });
    }
    // Content types other than application/json (a correctly signed valid body).
    const types = fc.sample(
      fc.oneof(fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "application/json-seq", "text/json", "", "application/xml"), fc.string({ maxLength: 40 }).map((x) => x.replace(/[^\x20-\x7e]/g, ""))).filter((ct) => !/^application\/json\s*(;|$)/i.test(ct)),
      { numRuns: N - cases.length, seed: SEED },
    );
    for (const ct of types) {
      const raw = JSON.stringify(clickEvent());
      cases.push({ label: `content-type ${JSON.stringify(ct)}`, path: "/v1/clicks", init: { method: "POST", headers: { "content-type": ct, [SIGNATURE_HEADER]: await sign(KEYS.beacon, raw) }, body: raw } });
    }
    expect(cases.length).toBeGreaterThanOrEqual(N);
    expect(await fire(cases)).toEqual([]);
    expect(await rows("clicks")).toBe(before);
    expect(seen.get(400)).toBeGreaterThan(N / 2);
    expect(seen.get(401)).toBeGreaterThan(N / 10);
  });
});

describe("hostile but schema-valid beacons", () => {
  it("NUL, lone surrogates, SQL and CR/LF in free-text fields: stored as data or refused with a 4xx, never a 5xx", async () => {
    const values = ["\u0000", "a\u0000b", "\uD800", "' OR 1=1 --", "'); DROP TABLE clicks; --", "\r\nX-Injected: 1", "\\", "\u202E"];
    const cases: Case[] = [];
    for (const v of values)
      for (const e of [clickEvent({ user_agent: v }), clickEvent({ referer: v }), clickEvent({ code: v }), clickEvent({ domain: v }), clickEvent({ geo_location: { city: v, country: "DE" } })]) {
        const raw = JSON.stringify(e);
        cases.push({ label: raw.slice(0, 200), path: "/v1/clicks", init: { method: "POST", headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(KEYS.beacon, raw) }, body: raw } });
      }
    // The link clickEvent()'s clicks name, for this test only: the link API fuzz below expects
    // no link to exist (an id it tries must never find one).
    await seedLinks(s.sql, [clickEvent()]);
    onTestFinished(async () => void (await s.sql`DELETE FROM links`));
    const bad: string[] = [];
    for (const c of cases) {
      const res = await fetch(s.ingest.url + c.path, c.init);
      if (res.status >= 500) bad.push(`${res.status} ${c.label} ${await res.text()}`);
      else await res.arrayBuffer();
    }
    expect(bad).toEqual([]);
    // The click is kept; what PostgreSQL cannot hold became U+FFFD.
    const [t] = await s.sql`SELECT count(*)::int AS n FROM clicks WHERE user_agent = ${"a\uFFFDb"}`;
    expect(t!.n).toBe(1);
  });
});

// ---- the link API and the stats API ---------------------------------------------------------

const auth = () => ({ Authorization: `Bearer ${s.adminKey}` });
const NOT_STRING_NN = NOT_STRING.filter((v) => v !== null);
const NOT_BOOL = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.boolean(), { maxLength: 2 }));
/** Query-string noise under keys no endpoint knows (so it never overrides the invalid one). */
const KNOWN = new Set(["limit", "cursor", "q", "tag", "domain", "archived", "sort", "link", "from", "to", "interval", "tz", "group_by", "bots", "country", "region", "city", "device", "browser", "os", "referer_host", "utm_source", "utm_medium", "utm_campaign", "qr", "cache_tier", "colo"]);
const noise = fc.array(fc.tuple(fc.string({ maxLength: 12 }).filter((k) => !KNOWN.has(k)), junkString), { maxLength: 3 });
const query = (params: [string, string][], extra: [string, string][]) => "?" + new URLSearchParams([...extra, ...params]).toString();
/** Headers that must fail auth (never the admin key). */
const badAuth = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 60 }).map((x) => x.replace(/[^\x20-\x7e]/g, "")),
  fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789_"), minLength: 1, maxLength: 60 }).map((k) => `Bearer lf_${k}`),
  fc.constantFrom("Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer ' OR '1'='1", "Bearer lf_*", "Bearer %00"),
);

describe("fuzz: the link API", { timeout: FUZZ_TIMEOUT_MS }, () => {
  const nonNull = <T>(a: fc.Arbitrary<T>) => a.filter((v) => v !== null && v !== undefined);
  const linkBody: fc.Arbitrary<string> = fc.oneof(
    // any JSON without a url (required), or with a url that is not an http(s) URL string
    fc.jsonValue({ maxDepth: 3 }).filter((v) => !(v && typeof v === "object" && !Array.isArray(v) && "url" in v)).map((v) => JSON.stringify(v) ?? "null"),
    fc.oneof(NOT_STRING, junkString).map((url) => JSON.stringify({ url })),
    // a good url and one bad field
    fc
      .oneof(
        fc.tuple(fc.constantFrom("slug", "domain"), NOT_STRING_NN),
        fc.tuple(fc.constant("slug"), fc.constantFrom("", "-x", "a/b", "../x", "%2e%2e", "a\r\nb", "x".repeat(65), "api", "' OR 1=1 --")),
        fc.tuple(fc.constant("title"), fc.oneof(NOT_STRING_NN, fc.constant("t".repeat(501)))),
        fc.tuple(fc.constant("tags"), fc.oneof(fc.string(), fc.integer(), fc.array(fc.constantFrom("a,b", "x;y", "p|q", "\u0000", 5, null), { minLength: 1, maxLength: 3 }))),
        fc.tuple(fc.constant("redirect_status"), fc.oneof(fc.integer().filter((n) => ![301, 302, 307, 308].includes(n)), fc.string())),
        fc.tuple(fc.constant("expires_at"), nonNull(fc.oneof(junkString, fc.integer(), fc.boolean()))),
        fc.tuple(fc.constant("expired_url"), fc.oneof(NOT_STRING_NN, fc.constantFrom("javascript:alert(1)", "//evil.example", "data:text/html,x"))),
        fc.tuple(fc.constant("max_clicks"), fc.oneof(fc.integer({ max: 0 }), fc.double({ min: 0.1, max: 1e6, noInteger: true }), fc.string(), fc.constant(2 ** 60))),
        fc.tuple(fc.constant("password"), fc.oneof(fc.constant(""), fc.constant("p".repeat(129)), fc.integer(), fc.boolean())),
        fc.tuple(fc.constant("targeting"), fc.oneof(fc.string(), fc.integer(), fc.array(fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.record({ country: fc.constant(["de"]), url: fc.constant("https://example.de/") })), { minLength: 1, maxLength: 2 }).filter((a) => a.some((r) => !r || typeof r !== "object" || Array.isArray(r) || !("url" in r) || "country" in r)))),
        fc.tuple(fc.constant("utm"), fc.oneof(fc.string(), fc.integer(), fc.record({ evil: fc.string() }))),
        fc.tuple(fc.constant("archived"), NOT_BOOL),
        fc.tuple(fc.constantFrom("__proto__", "id", "workspace_id", "code", "created_at", "password_hash", "has_password"), fc.jsonValue()),
      )
      .map(([k, v]) => {
        const o: Record<string, unknown> = { url: "https://example.com/fuzz" };
        Object.defineProperty(o, k, { value: v, enumerable: true });
        return JSON.stringify(o);
      }),
    // not JSON
    fc.string({ minLength: 1 }).filter((x) => { try { JSON.parse(x); return false; } catch { return true; } }),
  );
  // ids that are not a positive integer (no link exists anyway: a 404 is fine, a write is not)
  const badId = fc.oneof(junkString, fc.constantFrom("0", "-1", "1.5", "1e400", "9007199254740993", "0x1", "NaN", "..", "%2e%2e", "1;DROP TABLE links", "1 OR 1=1")).filter((x) => x !== "");

  it(`${N} malformed bodies, ids, query strings and auth headers → 4xx JSON errors, no rows`, async () => {
    const before = await rows("links");
    const cases: Case[] = [];
    const post = (b: string, headers: Record<string, string> = { ...auth(), "content-type": "application/json" }) => ({ method: "POST", headers, body: b });
    for (const b of fc.sample(linkBody, { numRuns: Math.round(N * 0.5), seed: SEED })) cases.push({ label: b.slice(0, 200), path: "/api/links", init: post(b) });
    for (const b of fc.sample(linkBody, { numRuns: Math.round(N * 0.05), seed: SEED + 1 })) cases.push({ label: `bulk ${b.slice(0, 200)}`, path: "/api/links/bulk", init: post(b) });
    for (const [id, b, m] of fc.sample(fc.tuple(badId, linkBody, fc.constantFrom("GET", "PATCH", "DELETE")), { numRuns: Math.round(N * 0.15), seed: SEED })) {
      cases.push({ label: `${m} ${id}`, path: `/api/links/${encodeURIComponent(id.replace(/[\uD800-\uDFFF]/g, "\uFFFD"))}`, init: m === "PATCH" ? { ...post(b), method: "PATCH" } : { method: m, headers: auth() } });
    }
    const badList = fc.oneof(
      fc.tuple(fc.constant("limit"), fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 101 }), fc.constantFrom("x", "1.5", "", "1e9")).map(String)),
      fc.tuple(fc.constant("archived"), junkString.filter((x) => !["false", "true", "all"].includes(x))),
      fc.tuple(fc.constant("sort"), junkString.filter((x) => !["-created_at", "created_at"].includes(x))),
      fc.tuple(fc.constantFrom("q", "cursor"), fc.constant("q".repeat(201))),
    );
    for (const [bad, extra, path] of fc.sample(fc.tuple(badList, noise, fc.constantFrom("/api/links", "/api/links/export")), { numRuns: Math.round(N * 0.2), seed: SEED })) {
      const p: [string, string] = [bad[0], bad[1]];
      // export has no limit/cursor: the same junk as a sort (never a valid one)
      if (path.endsWith("export") && (p[0] === "limit" || p[0] === "cursor")) p[0] = "sort";
      cases.push({ label: `${path} ${p.join("=")}`, path: path + query([p], extra), init: { headers: auth() } });
    }
    for (const a of fc.sample(badAuth, { numRuns: N - cases.length, seed: SEED })) {
      cases.push({ label: `auth ${JSON.stringify(a)}`, path: "/api/links", init: post(JSON.stringify({ url: "https://example.com/x" }), { "content-type": "application/json", ...(a === undefined ? {} : { Authorization: a }) }) });
    }
    expect(cases.length).toBeGreaterThanOrEqual(N);
    expect(await fire(cases)).toEqual([]);
    expect(await rows("links")).toBe(before);
    expect(seen.get(400)).toBeGreaterThan(N / 2);
    expect(seen.get(401)).toBeGreaterThan(N / 20);
  });
});

describe("fuzz: the stats API", { timeout: FUZZ_TIMEOUT_MS }, () => {
  // Without a pipeline this process has no ClickHouse (a valid query answers 503): this fuzzes
  // the query validation, which answers 400 before ClickHouse is asked.
  const badStats = fc.oneof(
    fc.tuple(fc.constant("interval"), junkString.filter((x) => !["minute", "hour", "day"].includes(x))),
    fc.tuple(fc.constant("bots"), junkString.filter((x) => !["exclude", "include", "only"].includes(x))),
    fc.tuple(fc.constant("group_by"), junkString),
    fc.tuple(fc.constant("limit"), fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 1001 }), fc.constantFrom("x", "1.5", "", "Infinity")).map(String)),
    fc.tuple(fc.constant("tz"), fc.oneof(junkString, fc.constantFrom("Mars/Olympus", "../../etc/passwd", "UTC'; DROP TABLE x", "Europe/Berlin\u0000"))),
    fc.tuple(fc.constantFrom("from", "to"), fc.oneof(junkString, fc.constantFrom("2026-13-01T00:00:00Z", "2026-01-01", "now()", "1700000000"))),
    fc.tuple(fc.constant("link"), fc.oneof(fc.integer({ max: 0 }).map(String), fc.constantFrom("x", "1.5", "1 OR 1=1", "1;DROP TABLE links"))),
    fc.tuple(fc.constant("qr"), junkString.filter((x) => !["true", "false"].includes(x))),
    fc.tuple(fc.constantFrom("country", "city", "referer_host", "utm_source"), fc.constant("x".repeat(2001))),
    fc.tuple(fc.constant("tag"), fc.constantFrom("", "t".repeat(101))),
  );
  it(`${N} malformed query strings and auth headers → 4xx JSON errors (no 503: validation comes first)`, async () => {
    const cases: Case[] = [];
    for (const [p, extra, path] of fc.sample(fc.tuple(badStats, noise, fc.constantFrom("/api/stats", "/api/stats", "/api/stats/live")), { numRuns: Math.round(N * 0.9), seed: SEED })) {
      if (path.endsWith("live") && !["bots", "link", "tag"].includes(p[0])) p[0] = "bots";
      // group_by junk could name a dimension: make it certainly not one
      if (p[0] === "group_by") p[1] = `x${p[1]}`;
      // tz junk could be a real zone ("UTC", "GMT"): make it certainly not one
      if (p[0] === "tz") p[1] = `${p[1]}/\u00a7`;
      // from/to junk: certainly not an ISO datetime
      if (p[0] === "from" || p[0] === "to") p[1] = `~${p[1]}`;
      cases.push({ label: `${path} ${p.join("=")}`, path: path + query([p], extra), init: { headers: auth() } });
    }
    for (const a of fc.sample(badAuth, { numRuns: N - cases.length, seed: SEED })) {
      cases.push({ label: `auth ${JSON.stringify(a)}`, path: "/api/stats?interval=day", init: { headers: a === undefined ? {} : { Authorization: a } } });
    }
    expect(cases.length).toBeGreaterThanOrEqual(N);
    expect(await fire(cases)).toEqual([]);
    expect(seen.get(400)).toBeGreaterThan(N / 2);
  });
});
