/**
 * Serves the built dashboard (dashboard/ → dist/dashboard, `npm run build`) at `/`: index.html
 * and /assets/*, with a strict CSP (scripts, styles and connections from this origin only,
 * blob: images for the QR preview, no framing). Files are read per request (they are small),
 * so a rebuild shows up without a restart.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Hono, type Context } from "hono";

export const DASHBOARD_DIR = fileURLToPath(new URL("../../../../dist/dashboard/", import.meta.url));

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8" };

function secure(c: Context) {
  c.header("Content-Security-Policy", DASHBOARD_CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  c.header("Cache-Control", "no-cache");
}

export function dashboardRoutes(dir = DASHBOARD_DIR) {
  const app = new Hono();
  const serve = async (c: Context, file: string) => {
    secure(c);
    const ext = file.slice(file.lastIndexOf("."));
    try {
      return c.body(await readFile(join(dir, file)), 200, { "Content-Type": TYPES[ext] ?? "application/octet-stream" });
    } catch {
      if (file !== "index.html") return c.text("not found", 404);
      return c.text("The dashboard is not built: run `npm run build` (npm start builds it).", 503);
    }
  };
  app.get("/", (c) => serve(c, "index.html"));
  app.get("/assets/:file{(app)\\.(js|css)}", (c) => serve(c, `assets/${c.req.param("file")}`));
  app.get("/favicon.ico", (c) => {
    secure(c);
    return c.body(null, 204);
  });
  return app;
}
