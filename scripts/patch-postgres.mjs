// postinstall: patches postgres.js (porsager/postgres#1208; upstream fix PR #1209, not released in
// 3.4.9): `nextWrite` dereferences a socket that `closed()` already set to null, throwing an
// uncaught TypeError that kills the process (seen in ingest during a PostgreSQL outage), or the
// write vanishes and the query never settles. The guard settles the connection's queries with
// CONNECTION_CLOSED instead, so callers get a normal error (and ingest a 503). Idempotent; a
// version whose code no longer matches is left alone with a warning (the fix may be upstream).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "postgres");
const MARK = "linkflow: guard nextWrite";
const FROM = "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n";
const TO =
  "  function nextWrite(fn) {\n" +
  `    if (!socket) { // ${MARK} (porsager/postgres#1208)\n` +
  "      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n" +
  "      chunk = nextWriteTimer = null\n" +
  "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
  "      return false\n" +
  "    }\n" +
  "    const x = socket.write(chunk, fn)\n";

let patched = 0;
for (const rel of ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"]) {
  const file = join(root, rel);
  if (!existsSync(file)) continue;
  const text = readFileSync(file, "utf8");
  if (text.includes(MARK)) continue;
  if (!text.includes(FROM)) {
    console.warn(`patch-postgres: ${rel} does not match the expected code; not patched (check porsager/postgres#1208)`);
    continue;
  }
  writeFileSync(file, text.replace(FROM, TO));
  patched++;
}
if (patched) console.log(`patch-postgres: guarded nextWrite in ${patched} file(s)`);
