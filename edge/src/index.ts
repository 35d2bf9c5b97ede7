import { Hono } from "hono";
import { admin } from "./admin.ts";
import { queueClick } from "./beacon.ts";
import { buildClick } from "./click.ts";
import { decide } from "./decide.ts";
import type { Env } from "./env.ts";
import { pages } from "./pages.ts";
import { resolveLink } from "./resolve.ts";

// Codes the API could have issued (see ingest/src/codes.ts); anything else is 404 without a lookup.
const CODE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The Host's code space: "" for the primary short domain, else the custom domain. */
const domainOf = (host: string, env: Env) => {
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  return env.PRIMARY_HOSTS.split(",").some((h) => h.trim() === hostname) ? "" : hostname;
};

const app = new Hono<{ Bindings: Env }>();

app.route("/_admin", admin);
app.get("/", (c) => c.text("Linkflow edge\n"));

// Hono answers HEAD through this GET route too (same decision, same click, no body).
app.get("/:code", async (c) => {
  const code = c.req.param("code");
  if (!CODE_RE.test(code)) return pages.notFound();
  const decision = decide(await resolveLink(c.env, c.executionCtx, domainOf(c.req.header("host") ?? "", c.env), code));
  switch (decision.kind) {
    case "not_found":
      return pages.notFound();
    case "unavailable":
      return pages.unavailable();
    case "redirect": {
      // The click goes out after the response, never on the redirect's critical path.
      if (c.env.BEACONS !== "off") c.executionCtx.waitUntil(queueClick(c.env, buildClick(c.req.raw, decision.link, decision.tier)));
      // private, max-age=0: a browser that cached a 301 would never come back, and the click would be lost.
      return new Response(null, {
        status: decision.status,
        headers: { Location: decision.location, "Cache-Control": "private, max-age=0", "X-Cache-Tier": decision.tier },
      });
    }
  }
});

app.notFound(() => pages.notFound());

export default app;
