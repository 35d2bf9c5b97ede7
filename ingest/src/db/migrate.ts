import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Sql } from "./connect.ts";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));
// Any constant: all ingest processes that start together queue on it, so each file runs once.
const MIGRATION_LOCK = 7_000_001;
/** A migration file's name; its version is the name without `.sql`. */
export const MIGRATION_FILE = /^\d+_.+\.sql$/;

/**
 * Applies ingest/migrations/NNN_name.sql in order, each once and in its own transaction,
 * recording it in schema_migrations. Returns the versions it applied.
 */
export async function migrate(sql: Sql, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
  const applied: string[] = [];
  for (const file of files) {
    const version = file.replace(/\.sql$/, "");
    const text = await readFile(dir + file, "utf8");
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
      const [done] = await tx`SELECT 1 FROM schema_migrations WHERE version = ${version}`;
      if (done) return;
      await tx.unsafe(text); // trusted file shipped with the code, never input
      await tx`INSERT INTO schema_migrations (version) VALUES (${version})`;
      applied.push(version);
    });
  }
  return applied;
}
