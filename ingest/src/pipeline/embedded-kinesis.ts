import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import kinesalite from "kinesalite";

/**
 * kinesalite (an implementation of the Kinesis API) in-process, for `npm start`: persisted in
 * `dir` (LevelDB; one process per folder), or in memory without one.
 */
export async function startEmbeddedKinesis(dir?: string, port = 0): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  if (dir) await mkdir(dir, { recursive: true });
  const server = kinesalite({ path: dir, createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 500 });
  await new Promise<void>((resolve, reject) => server.listen(port, "127.0.0.1", () => resolve()).once("error", reject));
  const { port: bound } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
