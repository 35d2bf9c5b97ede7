/**
 * Builds the dashboard (dashboard/src → dist/dashboard) with esbuild: one ES module bundle
 * (uPlot and the typed API client, openapi-fetch on shared/api-types.ts, included; no CDN) and one stylesheet, plus index.html. `npm run build` runs it;
 * `npm start` runs it with `--if-stale` (skipped when the output is newer than every source).
 */
import { copyFile, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL(".", import.meta.url));
/** Where ingest looks for the built files (ingest/src/http/routes/dashboard.ts). */
export const DASHBOARD_DIST = resolve(root, "../dist/dashboard");
const STAMP = join(DASHBOARD_DIST, ".built");

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? await newestMtime(p) : (await stat(p)).mtimeMs);
  }
  return newest;
}

/** True when dist/dashboard is missing or older than a source file (or the API types, or a library it bundles). */
export async function dashboardStale(): Promise<boolean> {
  const built = await stat(STAMP).then((s) => s.mtimeMs, () => 0);
  if (!built) return true;
  const mtime = (p: string) => stat(resolve(root, p)).then((s) => s.mtimeMs, () => 0);
  const deps = await Promise.all(["../node_modules/uplot/package.json", "../node_modules/openapi-fetch/package.json", "../shared/api-types.ts", "../shared/utm.ts"].map(mtime));
  return Math.max(await newestMtime(join(root, "src")), (await stat(join(root, "index.html"))).mtimeMs, ...deps) > built;
}

/** Builds the dashboard; with `ifStale`, only when the output is missing or out of date. */
export async function buildDashboard(opts: { ifStale?: boolean } = {}): Promise<{ built: boolean; dir: string }> {
  if (opts.ifStale && !(await dashboardStale())) return { built: false, dir: DASHBOARD_DIST };
  await mkdir(join(DASHBOARD_DIST, "assets"), { recursive: true });
  await build({
    entryPoints: { app: join(root, "src/main.ts") },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    outdir: join(DASHBOARD_DIST, "assets"),
    logLevel: "warning",
    legalComments: "none",
  });
  await copyFile(join(root, "index.html"), join(DASHBOARD_DIST, "index.html"));
  await writeFile(STAMP, new Date().toISOString() + "\n");
  return { built: true, dir: DASHBOARD_DIST };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t = Date.now();
  const r = await buildDashboard({ ifStale: process.argv.includes("--if-stale") });
  console.log(r.built ? `dashboard built in ${Date.now() - t} ms → ${r.dir}` : `dashboard up to date (${r.dir})`);
}
