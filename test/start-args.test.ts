import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseStartArgs, rolesWithoutLoader } from "../scripts/start-args.ts";

/**
 * `npm start -- --loaders N` (scripts/start-args.ts). The unit tests sit here rather than beside
 * the module because the test runner includes shared/, edge/, ingest/ and test/ only.
 */
const servers = { CLICKHOUSE_URL: "http://ch:8123", DATABASE_URL: "postgres://pg/db" };

describe("npm start arguments", () => {
  it("defaults to no separate loaders, and reads --loaders N and --loaders=N", () => {
    expect(parseStartArgs([], {})).toEqual({ ok: true, loaders: 0 });
    expect(parseStartArgs(["--loaders", "3"], servers)).toEqual({ ok: true, loaders: 3 });
    expect(parseStartArgs(["--loaders=2"], servers)).toEqual({ ok: true, loaders: 2 });
    // The last one wins, as with most CLIs.
    expect(parseStartArgs(["--loaders=2", "--loaders", "5"], servers)).toEqual({ ok: true, loaders: 5 });
    // 0 loaders is today's single process: nothing required.
    expect(parseStartArgs(["--loaders", "0"], {})).toEqual({ ok: true, loaders: 0 });
  });

  it("refuses bad values and unknown arguments with exit code 2 and the usage", () => {
    for (const argv of [["--loaders"], ["--loaders", "-1"], ["--loaders", "two"], ["--loaders=1.5"], ["--loaders", "33"], ["--loader", "2"], ["extra"]]) {
      const r = parseStartArgs(argv, servers);
      expect(r.ok, argv.join(" ")).toBe(false);
      if (!r.ok) {
        expect(r.exitCode).toBe(2);
        expect(r.message).toContain("usage: npm start");
      }
    }
  });

  it("refuses loaders without a ClickHouse server or a PostgreSQL server, naming what is missing", () => {
    const none = parseStartArgs(["--loaders", "2"], {});
    expect(none).toMatchObject({ ok: false, exitCode: 2 });
    expect(!none.ok && none.message).toMatch(/^--loaders 2 needs CLICKHOUSE_URL and DATABASE_URL: /);
    const noCh = parseStartArgs(["--loaders", "2"], { DATABASE_URL: servers.DATABASE_URL });
    expect(!noCh.ok && noCh.message).toMatch(/^--loaders 2 needs CLICKHOUSE_URL: /);
    const noPg = parseStartArgs(["--loaders", "2"], { CLICKHOUSE_URL: servers.CLICKHOUSE_URL, DATABASE_URL: "" });
    expect(!noPg.ok && noPg.message).toMatch(/^--loaders 2 needs DATABASE_URL: /);
  });

  it("takes the loader role away from the main ingest, keeping the others", () => {
    expect(rolesWithoutLoader("forwarder,loader,archiver,maintenance")).toBe("forwarder,archiver,maintenance");
    expect(rolesWithoutLoader(" loader , forwarder ")).toBe("forwarder");
    expect(rolesWithoutLoader("loader")).toBe("");
  });

  it("scripts/start.ts --loaders 2 without CLICKHOUSE_URL exits 2 with one line, before starting anything", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "linkflow-start-args-"));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test" };
      delete env.CLICKHOUSE_URL;
      const proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", "--loaders", "2"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      proc.stdout.on("data", (d) => (out += d));
      proc.stderr.on("data", (d) => (err += d));
      const code = await new Promise<number | null>((r) => proc.once("exit", r));
      expect(code).toBe(2);
      expect(err.trim().split("\n")).toEqual([expect.stringMatching(/^--loaders 2 needs CLICKHOUSE_URL: /)]);
      expect(out).toBe("");
      // Nothing was started: no embedded database, KV or stream was created.
      expect(await readdir(dataDir)).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
