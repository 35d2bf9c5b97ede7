import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { afterAll, describe, expect, it } from "vitest";
import { edgeWorker, startEdge } from "../../edge/miniflare.ts";
import { ConfigError, loadConfig } from "../../ingest/src/config.ts";
import { generateKey } from "../../ingest/src/auth/keys.ts";
import { keysOf, KEY_LABELS } from "../../shared/keys.ts";
import { eventually, freePort } from "../helpers.ts";

/**
 * No secret has a default (issue 15): ingest and the worker refuse to start without
 * EDGE_SECRET, with one line that says how to set it; `npm start` generates its secrets once in
 * DATA_DIR (0700, files 0600) and prints only the admin key, once. Every key in use is derived
 * from EDGE_SECRET per purpose, so none of them is EDGE_SECRET or another purpose's key.
 */
const ingestAlone = (env: Record<string, string>) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const clean = { ...process.env };
    for (const k of ["EDGE_SECRET", "EDGE_SECRET_PREVIOUS", "ADMIN_API_KEY", "DATABASE_URL"]) delete clean[k];
    // No database is reachable here: a start that got past the configuration would hang or fail later, differently.
    const child = spawn(process.execPath, ["--import", "tsx", "ingest/src/main.ts"], {
      env: { ...clean, DATABASE_URL: "postgres://nobody@127.0.0.1:9/none", PORT: "0", PIPELINE_ROLES: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });

describe("ingest without its secrets", () => {
  it("exits non-zero with one line that says how to set EDGE_SECRET", async () => {
    const { code, out } = await ingestAlone({ ADMIN_API_KEY: generateKey() });
    expect(code).not.toBe(0);
    expect(out.trim().split("\n")).toHaveLength(1);
    expect(out).toMatch(/^ingest: EDGE_SECRET is not set: set it to a random string of at least 32 characters .*npm start.*data\/edge-secret/);
  });

  it("refuses a short EDGE_SECRET, a short EDGE_SECRET_PREVIOUS and a missing ADMIN_API_KEY", async () => {
    const good = "x".repeat(32);
    expect(() => loadConfig({ EDGE_SECRET: "dev-edge-secret-change-me", ADMIN_API_KEY: generateKey() })).toThrow(/EDGE_SECRET is too short/);
    expect(() => loadConfig({ EDGE_SECRET: good, EDGE_SECRET_PREVIOUS: "short", ADMIN_API_KEY: generateKey() })).toThrow(/EDGE_SECRET_PREVIOUS is too short/);
    expect(() => loadConfig({ EDGE_SECRET: good })).toThrow(ConfigError);
    expect(() => loadConfig({ EDGE_SECRET: good })).toThrow(/ADMIN_API_KEY is not set/);
    const { code, out } = await ingestAlone({ EDGE_SECRET: good });
    expect(code).not.toBe(0);
    expect(out).toMatch(/^ingest: ADMIN_API_KEY is not set/);
  });
});

describe("the worker without EDGE_SECRET", () => {
  it("is not started by edge/miniflare.ts, and a deployed one answers nothing but a 500", async () => {
    await expect(startEdge({ vars: { INGEST_URL: "http://127.0.0.1:9" } })).rejects.toThrow(/EDGE_SECRET is not set/);
    // As Cloudflare would run it with the secret never put: every route refuses, no redirect, no admin write.
    const mf = new Miniflare({ ...(await edgeWorker({ INGEST_URL: "http://127.0.0.1:9" }, "no-secret", { queues: false })), port: 0 });
    try {
      for (const path of ["/abc", "/_admin/links", "/"]) {
        const res = await mf.dispatchFetch(`http://localhost${path}`, { method: path === "/_admin/links" ? "PUT" : "GET", redirect: "manual" });
        expect(res.status).toBe(500);
        expect(await res.json()).toMatchObject({ error: { code: "misconfigured" } });
      }
    } finally {
      await mf.dispose();
    }
  });
});

describe("derived keys", () => {
  it("one 32-byte key per purpose, none equal to another, to the secret or to another secret's", async () => {
    const a = await keysOf("a".repeat(40));
    const b = await keysOf("b".repeat(40));
    const all = [...Object.values(a), ...Object.values(b)].map((k) => Buffer.from(k).toString("hex"));
    expect(Object.keys(a).sort()).toEqual(Object.keys(KEY_LABELS).sort());
    expect(all.every((k) => k.length === 64)).toBe(true);
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain(Buffer.from("a".repeat(32)).toString("hex"));
    // Derived, not random: the worker and every ingest process get the same keys.
    expect(Buffer.from((await keysOf("a".repeat(40))).beacon).equals(Buffer.from(a.beacon))).toBe(true);
  });
});

describe("npm start's secrets", () => {
  let dataDir = "";
  let proc: ChildProcess | undefined;
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill("SIGINT");
      await eventually(async () => proc!.exitCode !== null, 15_000, 50);
    }
    if (dataDir) await rm(dirname(dataDir), { recursive: true, force: true });
  });

  it("are generated into DATA_DIR (0700, files 0600); only the admin key is printed, once; PGlite's open socket is said", async () => {
    dataDir = join(await mkdtemp(join(tmpdir(), "linkflow-secrets-")), "data");
    const edgePort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: String(await freePort()), EDGE_PORT: String(edgePort), LOG_LEVEL: "warn" };
    for (const k of ["DATABASE_URL", "ADMIN_API_KEY", "EDGE_SECRET", "EDGE_SECRET_PREVIOUS", "SHORT_BASE_URL", "EDGE_ADMIN_URL"]) delete env[k];
    proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", (d) => (out += d));
    const ready = await eventually(async () => out.includes("Ctrl-C stops everything") || proc!.exitCode !== null, 60_000, 100);
    expect(ready && proc.exitCode === null, out).toBe(true);

    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    for (const f of ["edge-secret", "admin-key"]) expect((await stat(join(dataDir, f))).mode & 0o777).toBe(0o600);
    const edgeSecret = (await readFile(join(dataDir, "edge-secret"), "utf8")).trim();
    const adminKey = (await readFile(join(dataDir, "admin-key"), "utf8")).trim();
    expect(edgeSecret.length).toBeGreaterThanOrEqual(32);
    expect(edgeSecret).not.toBe((await readFile(join(dataDir, "admin-key"), "utf8")).trim());

    expect(out.split(adminKey).length - 1).toBe(1);
    expect(out).not.toContain(edgeSecret);
    for (const k of Object.values(await keysOf(edgeSecret))) {
      expect(out).not.toContain(Buffer.from(k).toString("hex"));
      expect(out).not.toContain(Buffer.from(k).toString("base64url"));
    }
    expect(out).toMatch(/PGlite .*127\.0\.0\.1 only: it accepts any user/);
    expect(out).toMatch(/edge-secret, .*admin-key \(mode 0600/);
    // The worker got the generated secret (without one it answers every request with a 500).
    expect((await fetch(`http://127.0.0.1:${edgePort}/`)).status).toBe(200);
  }, 90_000);
});
