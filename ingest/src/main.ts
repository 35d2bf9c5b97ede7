/** Ingest alone (`npm run ingest`): for deployments where the worker runs on Cloudflare. */
import { loadConfig } from "./config.ts";
import { startIngest } from "./server.ts";

const ingest = await startIngest(loadConfig());
console.log(`ingest listening on ${ingest.url}`);
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => void ingest.close().finally(() => process.exit(0)));
