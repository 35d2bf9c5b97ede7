import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

/**
 * The zero-setup database for `npm start`: PGlite (PostgreSQL compiled to WASM) kept in
 * `dir`, served on a loopback port so ingest talks to it with the same `postgres` client it
 * uses for a real server. PGlite is single-session: use a pool of one connection with it.
 */
export async function startEmbeddedPostgres(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const db = await PGlite.create(dir);
  // The server multiplexes connections onto the one session, keeping a transaction's
  // statements together; each process should still hold a single connection.
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 16 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
