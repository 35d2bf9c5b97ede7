import { readdir } from "node:fs/promises";
import type { Sql } from "./connect.ts";
import { MIGRATION_FILE, MIGRATIONS_DIR } from "./migrate.ts";

export type Readiness =
  | { ready: true; migration: string }
  | { ready: false; code: "unavailable" | "migrations_pending"; message: string; error?: unknown };

/**
 * Can this process serve: PostgreSQL answers (within `timeoutMs`, below an orchestrator's usual
 * 1 s probe timeout) and schema_migrations holds the newest migration shipped with this code
 * (a process started against a database another version migrated, or whose migration failed,
 * is not ready).
 */
export function readiness(sql: Sql, { dir = MIGRATIONS_DIR, timeoutMs = 900 } = {}): () => Promise<Readiness> {
  // The files ship with the code: read once.
  const newest = readdir(dir).then((files) => files.filter((f) => MIGRATION_FILE.test(f)).sort().at(-1)!.replace(/\.sql$/, ""));
  return async () => {
    const version = await newest;
    let timer: NodeJS.Timeout | undefined;
    try {
      const rows = await Promise.race([
        sql`SELECT 1 FROM schema_migrations WHERE version = ${version}`,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error("readiness query timed out"), { code: "ETIMEDOUT" })), timeoutMs))),
      ]);
      if (rows.length) return { ready: true, migration: version };
      return { ready: false, code: "migrations_pending", message: `migration ${version} is not applied` };
    } catch (error) {
      // 42P01: no schema_migrations table at all (nothing migrated yet).
      if ((error as { code?: unknown }).code === "42P01") return { ready: false, code: "migrations_pending", message: `migration ${version} is not applied` };
      return { ready: false, code: "unavailable", message: "the database is unavailable", error };
    } finally {
      clearTimeout(timer);
    }
  };
}
