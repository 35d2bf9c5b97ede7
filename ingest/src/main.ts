/** Ingest alone (`npm run ingest`): for deployments where the worker runs on Cloudflare. */
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { UnreachableError } from "./errors.ts";
import { startIngest } from "./server.ts";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  // One line that says what to set; no stack trace for a configuration mistake.
  console.error(`ingest: ${err.message}`);
  process.exit(2);
}
const ingest = await startIngest(config).catch((err) => {
  if (!(err instanceof UnreachableError)) throw err;
  // One line: which service, at which address (docs/OPERATIONS.md, "Start-up").
  console.error(`ingest: ${err.message}`);
  process.exit(1);
});
console.log(`ingest listening on ${ingest.url}`);
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => void ingest.close().finally(() => process.exit(0)));
