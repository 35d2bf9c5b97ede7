import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../../ingest/src/auth/keys.ts";
import { clickEvent, postBeacon } from "../fixtures.ts";
import { body, DATABASE_URL, EDGE_SECRET, KEYS, testSchema } from "../helpers.ts";

/**
 * No secret in the logs: ingest as its own process (`node --import tsx ingest/src/main.ts`) at
 * LOG_LEVEL=debug, every line of stdout and stderr captured, while keys are created, links with
 * passwords are written, beacons (good and bad) arrive and the KV push to an unreachable worker
 * fails. The admin key, created keys' secrets, EDGE_SECRET, the keys derived from it (hex or
 * base64) and link passwords never appear.
 */
let db: Awaited<ReturnType<typeof testSchema>>;
let child: ChildProcess;
let out = "";
let url = "";
const adminKey = generateKey();

beforeAll(async () => {
  db = await testSchema();
  const u = new URL(DATABASE_URL);
  u.searchParams.set("search_path", db.schema);
  child = spawn(process.execPath, ["--import", "tsx", "ingest/src/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: u.toString(),
      PORT: "0",
      LOG_LEVEL: "debug",
      ADMIN_API_KEY: adminKey,
      EDGE_SECRET,
      EDGE_ADMIN_URL: "http://127.0.0.1:9", // nothing listens: the push fails and is logged
      SHORT_BASE_URL: "http://localhost:8787",
      PIPELINE_ROLES: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const until = Date.now() + 20_000;
  while (!(url = /ingest listening on (\S+)/.exec(out)?.[1] ?? "") && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  if (!url) throw new Error(`ingest did not start:\n${out}`);
});
afterAll(async () => {
  if (child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
  await db.drop();
});

const api = (path: string, method: string, b?: unknown, key = adminKey) =>
  fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${key}`, "content-type": "application/json" }, body: b === undefined ? undefined : JSON.stringify(b) });

describe("secrets in logs", () => {
  it("the admin key, created keys, EDGE_SECRET, its derived keys and link passwords never appear in debug output", async () => {
    const secrets = [adminKey, EDGE_SECRET];
    for (const k of Object.values(KEYS)) secrets.push(...(["hex", "base64", "base64url"] as const).map((enc) => Buffer.from(k).toString(enc)));
    const key = await body(await api("/api/keys", "POST", { name: "ci", scopes: ["links:write", "links:read"] }));
    expect(typeof key.key).toBe("string");
    secrets.push(key.key);
    const ws = await body(await api("/api/workspaces", "POST", { name: "other" }));
    if (ws.admin_key?.key) secrets.push(ws.admin_key.key);

    const pw = "pw-Sup3r-s3cret-" + Math.random().toString(36).slice(2);
    const pw2 = "pw-Another-s3cret-" + Math.random().toString(36).slice(2);
    secrets.push(pw, pw2);
    const link = await body(await api("/api/links", "POST", { url: "https://example.com/locked", password: pw }, key.key));
    expect(link.has_password).toBe(true);
    expect((await api(`/api/links/${link.id}`, "PATCH", { password: pw2 }, key.key)).status).toBe(200);
    // Errors: a bad password value, bad keys (one close to a real one), a bad beacon, a 404.
    await api("/api/links", "POST", { url: "https://example.com/x", password: "x".repeat(200) + pw }, key.key);
    await api("/api/links", "GET", undefined, adminKey.slice(0, -1) + "x");
    await api("/api/nope", "GET");
    // A click of the link above (ingest takes clicks only for the link at their domain/code).
    expect((await postBeacon(url, clickEvent({ link_id: Number(link.id), domain: link.domain, code: link.code }))).status).toBe(202);
    expect((await postBeacon(url, clickEvent(), { secret: EDGE_SECRET + "x" })).status).toBe(401);
    expect((await postBeacon(url, "{bad")).status).toBe(400);
    // Revoking logs too.
    await api(`/api/keys/${key.id}`, "DELETE");
    await new Promise((r) => setTimeout(r, 300)); // the failing KV pushes log asynchronously

    // The process used this file's schema (search_path in the URL): the link is there.
    expect((await db.sql`SELECT count(*)::int AS n FROM links`)[0]!.n).toBe(1);
    expect(out.split("\n").length).toBeGreaterThan(3);
    expect(out).toMatch(/"level":20|"level":30/); // the capture sees pino's lines
    for (const secret of secrets) expect(out.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the log`).toBe(false);
    // Not even an Authorization header value.
    expect(out).not.toMatch(/Bearer\s+lf_/i);
  });
});
