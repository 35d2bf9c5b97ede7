import postgres from "postgres";

export type Sql = postgres.Sql;

export interface DbOptions {
  max?: number;
  /** Tests give each file its own schema so files can run in parallel on one server. */
  schema?: string;
}

/** The one way ingest opens PostgreSQL (the app receives the `sql` made here). */
export function connect(url: string, { max = 10, schema }: DbOptions = {}): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    // Fail fast when PostgreSQL is down, so callers answer 503 instead of hanging.
    connect_timeout: 5,
    idle_timeout: 60,
    connection: schema ? { search_path: schema } : {},
    transform: { undefined: null },
  });
}
