/**
 * GET /docs: the API reference (Redoc) for /openapi.json, entirely from this server: the page, a
 * small start script and Redoc's standalone bundle, read from node_modules (the copy @redocly/cli
 * ships, pinned by package-lock.json), under the dashboard's CSP. No CDN, no inline script.
 * One addition to that CSP: Redoc styles itself with styled-components, which writes <style>
 * elements at run time; they carry a per-response nonce (given to it by the csp-nonce meta tag),
 * so style-src admits those and still no other inline style; and its icon font is a data: URL.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Hono, type Context } from "hono";
import { DASHBOARD_CSP } from "./dashboard.ts";

/** Redoc's browser bundle (an ES module) as @redocly/cli ships it for `build-docs`. */
export const REDOC_BUNDLE = fileURLToPath(new URL("../../../../node_modules/@redocly/cli/lib/chunks/redoc.standalone.js", import.meta.url));

const page = (nonce: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="csp-nonce" content="${nonce}">
<title>Linkflow API</title>
<script type="module" src="/docs/assets/start.js"></script>
</head>
<body><div id="redoc"></div></body>
</html>
`;

// Telemetry off; the spec from this origin.
const START = `import { init } from "/docs/assets/redoc.js";
init("/openapi.json", { disableTelemetry: true, hideDownloadButtons: false }, document.getElementById("redoc"));
`;

/** The dashboard's CSP, plus: the nonce'd <style> elements, and Redoc's icon font (a data: URL in its CSS). */
export const DOCS_CSP = (styleNonce: string) => DASHBOARD_CSP.replace("style-src 'self'", `style-src 'self' 'nonce-${styleNonce}'`).replace("font-src 'self'", "font-src 'self' data:");

function secure(c: Context, styleNonce?: string) {
  c.header("Content-Security-Policy", styleNonce ? DOCS_CSP(styleNonce) : DASHBOARD_CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
}

export function docsRoutes(bundle = REDOC_BUNDLE) {
  const app = new Hono();
  let cached: Promise<Buffer> | undefined;
  app.get("/docs", (c) => {
    const nonce = randomBytes(16).toString("base64");
    secure(c, nonce);
    c.header("Cache-Control", "no-store"); // a nonce is used once
    return c.html(page(nonce));
  });
  app.get("/docs/assets/start.js", (c) => {
    secure(c);
    return c.body(START, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache" });
  });
  app.get("/docs/assets/redoc.js", async (c) => {
    secure(c);
    try {
      const js = await (cached ??= readFile(bundle));
      return c.body(new Uint8Array(js), 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=3600" });
    } catch {
      cached = undefined;
      return c.text("the reference UI is not installed (node_modules/@redocly/cli)", 503);
    }
  });
  return app;
}
