import { Hono, type Context } from "hono";
import { CODE_PATTERN } from "../../shared/constants.ts";
import { secretProblem } from "../../shared/keys.ts";
import { admin } from "./admin.ts";
import { queueClick, type QueuedBody } from "./beacon.ts";
import { buildClick } from "./click.ts";
import { consumeQueue } from "./consumer.ts";
import { decide, type Decision } from "./decide.ts";
import type { Env } from "./env.ts";
import { requestFacts } from "./facts.ts";
import { acceptedKeys, signingKeys } from "./keys.ts";
import { pages } from "./pages.ts";
import { resolveLink } from "./resolve.ts";
import { robotsAdmin, robotsResponse } from "./robots.ts";
import { passwordAttemptAllowed } from "./throttle.ts";
import { hostnameOf } from "./url.ts";
import { checkPassword, hasUnlockCookie, readSubmission, unlockCookie } from "./unlock.ts";

// Codes the API could have issued (see ingest/src/links/codes.ts); anything else is 404 without a lookup.

/** PRIMARY_HOSTS as a set, parsed once per value of the var (not once per redirect). */
let primary = { from: "", hosts: new Set<string>() };
const primaryHosts = (env: Env) => {
  if (primary.from !== env.PRIMARY_HOSTS)
    primary = { from: env.PRIMARY_HOSTS, hosts: new Set(env.PRIMARY_HOSTS.split(",").map((h) => h.trim().toLowerCase())) };
  return primary.hosts;
};

/**
 * The Host's code space: "" for the primary short domain, else the custom domain. Read from the
 * request URL (whose host is the Host header on Cloudflare and in workerd; Miniflare's
 * dispatchFetch sets only the URL), lower case and without the port.
 */
const domainOf = (url: string, env: Env) => {
  const hostname = hostnameOf(url);
  return primaryHosts(env).has(hostname) ? "" : hostname;
};

type C = Context<{ Bindings: Env }>;

/**
 * One visit: resolve the link, decide (pure, edge/src/decide.ts), answer. Only a link that
 * asks for its password costs crypto: the decision is taken a second time once the worker has
 * checked the unlock cookie (one HMAC) or the submitted password (PBKDF2). A submission is
 * counted against the client's attempts for the link first, and over them it is not checked.
 */
async function visit(c: C, post: boolean): Promise<Response> {
  const code = c.req.param("code")!;
  if (!CODE_PATTERN.test(code)) return pages.notFound();
  const req = c.req.raw;
  const resolution = await resolveLink(c.env, c.executionCtx, domainOf(req.url, c.env), code);
  const facts = requestFacts(req, Date.now(), post);
  let decision = decide(resolution, facts);
  if (decision.kind === "password_form") {
    const { link } = decision;
    if (post && !(await passwordAttemptAllowed(c.env, link, req.headers))) {
      facts.password = "throttled";
    } else if (post) {
      const form = await readSubmission(req); // not a form or too large: no PBKDF2, just "wrong"
      facts.password = form.ok && (await checkPassword(form.password, link, await acceptedKeys(c.env))) ? "verified" : "wrong";
    } else if (await hasUnlockCookie(await acceptedKeys(c.env), link, req.headers.get("cookie"))) {
      facts.password = "cookie";
    }
    decision = decide(resolution, facts);
  }
  return answer(c, decision, resolution.originMs);
}

/** The one place that turns a decision into a response, and emits the click of a redirect (with the origin resolve's duration, if it was asked). */
async function answer(c: C, d: Decision, originMs?: number): Promise<Response> {
  switch (d.kind) {
    case "not_found":
      return pages.notFound();
    case "unavailable":
      return pages.unavailable();
    case "expired":
      return pages.gone();
    case "password_form":
      return pages.password(d.error);
    case "throttled":
      return pages.throttled(d.retryAfterS);
    case "unlocked":
    case "reload": {
      // 303: the browser comes back to the same URL (its ?qr=1 too) with a GET; that visit is the click.
      const url = new URL(c.req.url);
      const headers = new Headers({ Location: url.pathname + url.search, "Cache-Control": "no-store", "X-Robots-Tag": "noindex" });
      if (d.kind === "unlocked") headers.set("Set-Cookie", await unlockCookie(await signingKeys(c.env), d.link, url.protocol === "https:"));
      return new Response(null, { status: 303, headers });
    }
    case "redirect":
    case "expired_redirect": {
      // A visitor was sent somewhere, so it is a click (the fallback of an expired link too).
      // It goes out after the response, never on the redirect's critical path. A HEAD (link
      // checkers, unfurlers) gets the same answer and is no click.
      if (d.count && c.env.BEACONS !== "off") {
        const sending = queueClick(c.env, buildClick(c.req.raw, d, undefined, originMs));
        if (sending) c.executionCtx.waitUntil(sending);
      }
      // private, max-age=0: a browser that cached a 301 would never come back, and the click would be lost.
      const headers: Record<string, string> = { Location: d.location, "Cache-Control": "private, max-age=0", "X-Cache-Tier": d.tier };
      if (d.noindex) headers["X-Robots-Tag"] = "noindex";
      return new Response(null, { status: d.status, headers });
    }
  }
}

const app = new Hono<{ Bindings: Env }>();

// No secret has a default: without a usable EDGE_SECRET the worker answers nothing but this.
let reported = false;
app.use(async (c, next) => {
  const problem = secretProblem("EDGE_SECRET", c.env.EDGE_SECRET);
  if (!problem) return next();
  if (!reported) {
    reported = true;
    console.error(`linkflow-edge: ${problem}`);
  }
  return c.json({ error: { status: 500, code: "misconfigured", message: "EDGE_SECRET is not set on this worker" } }, 500);
});

app.route("/_admin", admin);
app.route("/_admin", robotsAdmin);
app.get("/", (c) => c.text("Linkflow edge\n"));
// The Host's domain's robots.txt (edge/src/robots.ts); before /:code, which would take it and 404 (no code has a dot).
app.get("/robots.txt", (c) => robotsResponse(c.env, domainOf(c.req.url, c.env)));

// Hono answers HEAD through this GET route too (same decision, no body; decide() marks it uncounted).
app.get("/:code", (c) => visit(c, false));
// The password form's submission.
app.post("/:code", (c) => visit(c, true));

app.notFound(() => pages.notFound());

// fetch: redirects and the admin API; queue: the consumer of CLICKS_QUEUE and of its dead-letter queue (edge/src/consumer.ts).
export default { fetch: app.fetch, queue: consumeQueue } satisfies ExportedHandler<Env, QueuedBody>;
