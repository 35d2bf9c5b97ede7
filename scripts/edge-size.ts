/**
 * The worker bundle's size, as `wrangler deploy` would upload it (minified: wrangler.toml
 * `minify = true`). `npm run build:edge` runs this after its dry run and prints dist/edge's
 * size; bench/run.ts records edgeBundleSize(), a dry run of its own into a temporary folder.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export interface BundleSize {
  kib: number;
  gzip_kib: number;
}

const root = fileURLToPath(new URL("..", import.meta.url));
const kib = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;
export const sizeOf = (js: Uint8Array): BundleSize => ({ kib: kib(js.byteLength), gzip_kib: kib(gzipSync(js).byteLength) });

/** Bundles the worker with `wrangler deploy --dry-run` and measures what it wrote. */
export function edgeBundleSize(): BundleSize {
  const dir = mkdtempSync(join(tmpdir(), "edge-size-"));
  try {
    execFileSync(join(root, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", dir], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: "ignore",
    });
    return sizeOf(readFileSync(join(dir, "index.js")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const size = sizeOf(readFileSync(join(root, "dist/edge/index.js")));
  console.log(`worker bundle: ${size.kib} KiB minified, ${size.gzip_kib} KiB gzip`);
}
