import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { DATABASE_URL } from "./helpers.ts";

/**
 * postgres.js 3.4.9 throws an uncaught TypeError from `nextWrite` when a query is written to a
 * connection whose socket is already gone (porsager/postgres#1208): under a PostgreSQL outage it
 * took ingest down. patches/postgres+3.4.9.patch (applied by patch-package when `npm ci` runs) makes
 * that write settle with CONNECTION_CLOSED instead, as the upstream fix (PR #1209) does. An uncaught
 * exception here fails the vitest run.
 */
const ROOT = resolve(import.meta.dirname, "..");
const sql = postgres(DATABASE_URL, { max: 2, onnotice: () => {} });
const killer = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
afterAll(async () => {
  await sql.end({ timeout: 1 });
  await killer.end({ timeout: 1 });
});

describe("postgres.js client under a dying connection", () => {
  it("the installed client carries the guard (npm ci applies patches/postgres+3.4.9.patch)", () => {
    for (const rel of ["src", "cjs/src"]) expect(readFileSync(join(ROOT, "node_modules/postgres", rel, "connection.js"), "utf8")).toContain("linkflow: guard nextWrite");
  });

  it("queries on a reserved connection whose backend was terminated fail; the process lives", async () => {
    const reserved = await sql.reserve();
    const [row] = await reserved<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    const pid = row!.pid;
    await killer`SELECT pg_terminate_backend(${pid})`;
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Unpatched, the third write throws from a timer (an uncaught TypeError fails this run).
      // The second query is left waiting by the client itself (upstream behaviour, patched or not).
      outcomes.push(
        await Promise.race([
          reserved`SELECT 1`.then(
            () => "ok",
            (err: { code?: string }) => err.code ?? "error",
          ),
          new Promise<string>((r) => setTimeout(() => r("pending"), 2_000)),
        ]),
      );
    }
    expect(outcomes).not.toContain("ok");
    expect(outcomes.at(-1)).toBe("CONNECTION_CLOSED");
    // The pool itself is fine afterwards (the dead reserved connection is left to sql.end()).
    expect((await sql`SELECT 1 AS one`)[0]!.one).toBe(1);
  });
});
