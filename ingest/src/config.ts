import { z } from "zod";

/** Every setting ingest reads, with its default. README.md lists the same table. */
const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8788),
  HOST: z.string().default("127.0.0.1"),
  /** Unset: embedded PGlite under DATA_DIR (npm start only). */
  DATABASE_URL: z.string().optional(),
  /** Connections in ingest's PostgreSQL pool. */
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  DATA_DIR: z.string().default("data"),
  /** Shared with the worker: signs beacons, resolve calls and KV write-through. */
  EDGE_SECRET: z.string().min(16).default("dev-edge-secret-change-me"),
  /** Where ingest pushes link records for KV (the worker's admin route). Empty: no push. */
  EDGE_ADMIN_URL: z.string().default("http://127.0.0.1:8787"),
  /** Base of the short links it hands out (the worker's public origin). */
  SHORT_BASE_URL: z.url().default("http://localhost:8787"),
  /** Bootstrap admin key; unset: npm start generates one and keeps it in DATA_DIR/admin-key. */
  ADMIN_API_KEY: z.string().min(16).optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Config = z.infer<typeof envSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid configuration: ${msg}`);
  }
  return parsed.data;
}
