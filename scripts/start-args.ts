/**
 * `npm start [-- --loaders N]`: the start script's arguments and what they need, checked before
 * anything starts (test/start-args.test.ts).
 */
export const MAX_LOADERS = 32;

export const USAGE = "usage: npm start [-- --loaders N]   (N: 0–32 loader processes besides ingest; needs CLICKHOUSE_URL and DATABASE_URL)";

export type StartArgs = { ok: true; loaders: number } | { ok: false; exitCode: 2; message: string };

const fail = (message: string): StartArgs => ({ ok: false, exitCode: 2, message });

/**
 * `--loaders N` / `--loaders=N`. Separate loader processes need a ClickHouse server: embedded
 * chDB is one process's data folder, so each loader would fill a ClickHouse of its own that the
 * stats API never reads. They need a PostgreSQL server too: the embedded PGlite serves one
 * multiplexed session, which other processes' pipelined queries can break.
 */
export function parseStartArgs(argv: readonly string[], env: NodeJS.ProcessEnv): StartArgs {
  let loaders = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let value: string | undefined;
    if (arg === "--loaders") value = argv[++i];
    else if (arg.startsWith("--loaders=")) value = arg.slice("--loaders=".length);
    else return fail(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    if (value === undefined || !/^\d+$/.test(value) || Number(value) > MAX_LOADERS)
      return fail(`--loaders needs a whole number from 0 to ${MAX_LOADERS}, got ${value === undefined ? "nothing" : JSON.stringify(value)}\n${USAGE}`);
    loaders = Number(value);
  }
  if (loaders > 0) {
    const missing = ["CLICKHOUSE_URL", "DATABASE_URL"].filter((k) => !env[k]);
    if (missing.length)
      return fail(
        `--loaders ${loaders} needs ${missing.join(" and ")}: separate loader processes share a ClickHouse server and a PostgreSQL server ` +
          `(embedded chDB and PGlite belong to one process). Set them, or run without --loaders (one process loads).`,
      );
  }
  return { ok: true, loaders };
}

/** The main ingest's roles when loaders run apart: the same list without `loader`. */
export const rolesWithoutLoader = (roles: string) =>
  roles
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r && r !== "loader")
    .join(",");
