#!/usr/bin/env node
// `npx linkflow …`: runs cli/linkflow.ts through tsx (the project runs TypeScript directly).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const tsx = require.resolve("tsx/cli");
const script = fileURLToPath(new URL("./linkflow.ts", import.meta.url));
const r = spawnSync(process.execPath, [tsx, script, ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 1);
