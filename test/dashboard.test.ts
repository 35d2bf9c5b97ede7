import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import axe from "axe-core";
import { parse } from "csv-parse/sync";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../dashboard/build.ts";
import { storeClicks } from "../ingest/src/clicks/store.ts";
import { applyPrivacy } from "../ingest/src/clicks/privacy.ts";
import { mergeUtm } from "../shared/utm.ts";
import { clickEvent } from "./fixtures.ts";
import { body, eventually, json, KEYS, startStack, type Stack } from "./helpers.ts";

/**
 * The dashboard in Debian's Chromium (playwright-core drives it; no browser download): sign in,
 * create a link through the form, follow it at the edge, and watch the click arrive in the
 * per-link chart and the live counter; then the links list and the SRE page. Screenshots of
 * every page go to test-results/.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(process.cwd(), "test-results");
/** The walk's screenshots, per viewport (printed by the test). */
const WALK_SHOTS = join(SHOTS, "dashboard");

let s: Stack;
let profile: string;
let ctx: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  await buildDashboard({ ifStale: true });
  await mkdir(SHOTS, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), "linkflow-chromium-"));
  [s, ctx] = await Promise.all([
    startStack({ pipeline: true }),
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1440, height: 900 },
      acceptDownloads: true,
      // A zone that is not UTC: ranges and buckets are the viewer's.
      timezoneId: "Europe/Berlin",
      locale: "en-US",
    }),
  ]);
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
}, 60_000);

afterAll(async () => {
  await ctx?.close();
  await s?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: true });

describe("dashboard", () => {
  it("is served by ingest with a strict CSP", async () => {
    const res = await fetch(`${s.ingest.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline scripts
    const js = await fetch(`${s.ingest.url}/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await fetch(`${s.ingest.url}/assets/../package.json`)).status).toBe(404);
  });

  it("signs in, creates a link, follows it, and sees the click in the chart and the live counter", async () => {
    await page.goto(`${s.ingest.url}/`);
    await page.getByLabel("API key").fill("lf_not_a_real_key_0000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That key is not valid.").waitFor();
    problems.length = 0; // the browser logs that 401; from here on, any console error (a CSP refusal too) fails the test
    await page.getByLabel("API key").fill(s.adminKey);
    await shot("1-sign-in");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor(); // the landing page
    expect(await page.evaluate(() => sessionStorage.getItem("linkflow.apiKey"))).toBe(s.adminKey);

    // Create through the form.
    await page.getByRole("link", { name: "New link" }).click(); // offered on the overview to a links:write key
    await page.locator('input[name="url"]').fill("https://example.com/spring-sale");
    await page.locator('input[name="slug"]').fill("dash-sale");
    await page.locator('input[name="title"]').fill("Spring sale");
    await page.locator('input[name="tags"]').fill("spring, promo");
    await page.locator('input[name="utm_source"]').fill("newsletter");
    await shot("2-new-link");
    await page.getByRole("button", { name: "Create link" }).click();
    await page.locator("#short-url").waitFor();
    const id = Number(/#\/links\/(\d+)/.exec(page.url())?.[1]);
    expect(id).toBeGreaterThan(0);
    const [link] = await s.sql`SELECT code, url, title, tags, utm FROM links WHERE id = ${id}`;
    expect(link).toMatchObject({ code: "dash-sale", url: "https://example.com/spring-sale", title: "Spring sale", tags: ["spring", "promo"], utm: { utm_source: "newsletter" } });
    await page.locator("#total-clicks").filter({ hasText: "0" }).waitFor();

    // Follow it at the edge (the destination is offline: don't follow the redirect).
    const res = await fetch(`${s.edge!.url}/dash-sale`, { redirect: "manual", headers: { "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36" } });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://example.com/spring-sale?utm_source=newsletter");

    // Beacon → PostgreSQL → Kinesis → ClickHouse → the page (SSE refresh, live poll every 2 s).
    await page.waitForFunction(
      () => document.querySelector("#total-clicks")?.textContent === "1" && document.querySelector<HTMLElement>("#clicks-chart")?.dataset.clicks === "1" && document.querySelector("#live-total")?.textContent === "1",
      undefined,
      { timeout: 20_000, polling: 250 },
    );
    await page.locator("#live-feed li").first().waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-dimension="browser"] .label').first().textContent()).toBe("Chrome");
    expect(await page.locator("#clicks-chart canvas").count()).toBe(1);
    await shot("3-link");

    // QR download.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download QR (PNG)" }).click()]);
    expect(download.suggestedFilename()).toBe("dash-sale-qr.png");

    // The table, with search.
    await page.getByRole("link", { name: "Links", exact: true }).click();
    await page.getByLabel("search").fill("spring");
    await page.locator('tr[data-link-id] .code', { hasText: "dash-sale" }).waitFor();
    await page.getByLabel("search").fill("no-such-link");
    await page.getByText("No links match “no-such-link”.").waitFor();
    await page.getByLabel("search").fill("");
    await page.locator("tr[data-link-id]").first().waitFor();
    await shot("4-links");

    // Edit: archive it.
    await page.goto(`${s.ingest.url}/#/links/${id}/edit`);
    await page.locator('input[name="archived"]').check();
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator('#short-url, form p.error:not(:empty)').first().waitFor();
    expect(await page.locator("form p.error").count() && (await page.locator("form p.error").textContent())).toBeFalsy();
    expect((await s.sql`SELECT archived FROM links WHERE id = ${id}`)[0]!.archived).toBe(true);

    // SRE: the click shows in the edge tiers and in the pipeline counters.
    await page.getByRole("link", { name: "SRE" }).click();
    await page.waitForFunction(() => document.querySelector("#pg-clicks")?.textContent === "1" && document.querySelector("#ch-clicks")?.textContent === "1" && /%$/.test(document.querySelector("#hit-ratio")?.textContent ?? ""), undefined, { timeout: 15_000, polling: 250 });
    expect(await page.locator("#hit-ratio-chart canvas").count()).toBe(1);
    await shot("5-sre");

    expect(problems).toEqual([]);
  }, 40_000);
});

/**
 * The walk of issue 20, on a desktop and a phone: an admin key and a stats:read key; the
 * overview, the links list sorted by clicks, a link page with bots toggled, a custom range, a
 * CSV export, the SRE page. On every page: no horizontal overflow, no console errors, no
 * serious or critical axe-core violations, and the numbers on screen are the API's for the
 * query the page sent (its `data-query`).
 */
const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  chrome: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  googlebot: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};
const VIEWPORTS = [
  { name: "desktop", width: 1440, height: 900 },
  { name: "phone", width: 390, height: 844 },
] as const;

describe("dashboard walk (issue 20): desktop and phone, admin and stats:read keys", () => {
  const ids: Record<"a" | "b" | "c", number> = { a: 0, b: 0, c: 0 };
  let statsKey: string;
  const get = async (path: string, key = s.adminKey) => {
    const res = await fetch(`${s.ingest.url}${path}`, { headers: json(key) });
    expect(res.status, path).toBe(200);
    return body(res);
  };
  const statsApi = (query: Record<string, unknown>, extra: Record<string, string | number> = {}) =>
    get(`/api/stats?${new URLSearchParams(Object.entries({ ...query, ...extra }).map(([k, v]) => [k, String(v)]))}`);

  beforeAll(async () => {
    await rm(WALK_SHOTS, { recursive: true, force: true }); // this run's screenshots only
    await mkdir(WALK_SHOTS, { recursive: true });
    await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: s.ingest.url });
    console.log(`dashboard screenshots: ${WALK_SHOTS}`);
    const create = async (slug: string, url: string, extra: Record<string, unknown> = {}) =>
      (await body(await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url, slug, ...extra }) }))).id as number;
    ids.a = await create("walk-a", "https://shop.example/autumn?ref=1", { title: "Autumn sale, with a long title that must not widen a phone screen", tags: ["autumn", "promo"], utm: { utm_source: "newsletter", utm_campaign: "autumn" } });
    ids.b = await create("walk-b", "https://shop.example/b");
    ids.c = await create("walk-c", "https://shop.example/c", { title: "Quiet link" });
    statsKey = (await body(await fetch(`${s.ingest.url}/api/keys`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ name: "reporting", scopes: ["stats:read"] }) }))).key;

    // Clicks over the last three days (stored as the beacon route stores them), bots among them.
    const H = 3_600_000;
    const ago = (h: number) => new Date(Date.now() - h * H).toISOString();
    const geo = (country: string) => ({ country, city: "X", colo: "FRA", latitude: 1, longitude: 2 });
    const A = { link_id: ids.a, code: "walk-a", original_url: "https://shop.example/autumn?ref=1" };
    const B = { link_id: ids.b, code: "walk-b", original_url: "https://shop.example/b" };
    const events = [
      clickEvent({ ...A, timestamp: ago(0.2), user_agent: UA.iphone, ip_address: "198.51.100.1", referer: "", geo_location: geo("DE"), qr: true }),
      clickEvent({ ...A, timestamp: ago(1.5), user_agent: UA.chrome, ip_address: "198.51.100.2", referer: "https://news.example/a", geo_location: geo("US") }),
      clickEvent({ ...A, timestamp: ago(5), user_agent: UA.chrome, ip_address: "198.51.100.3", referer: "https://news.example/b", geo_location: geo("DE") }),
      clickEvent({ ...A, timestamp: ago(26), user_agent: UA.iphone, ip_address: "198.51.100.4", referer: "", geo_location: geo("FR"), qr: true }),
      clickEvent({ ...A, timestamp: ago(50), user_agent: UA.chrome, ip_address: "198.51.100.5", referer: "https://social.example/x", geo_location: geo("GB") }),
      clickEvent({ ...A, timestamp: ago(2), user_agent: UA.googlebot, ip_address: "66.249.66.1", referer: "", geo_location: geo("US") }),
      clickEvent({ ...A, timestamp: ago(30), user_agent: UA.googlebot, ip_address: "66.249.66.2", referer: "", geo_location: geo("US") }),
      clickEvent({ ...B, timestamp: ago(3), user_agent: UA.chrome, ip_address: "198.51.100.6", referer: "", geo_location: geo("DE") }),
      clickEvent({ ...B, timestamp: ago(40), user_agent: UA.iphone, ip_address: "198.51.100.7", referer: "https://news.example/c", geo_location: geo("NL") }),
    ];
    await storeClicks(s.sql, events.map((e) => applyPrivacy(e, { anonymizeIp: true, respectDnt: true, saltSecret: Buffer.from(KEYS.visitorSalt).toString("hex") })));
    const seen = await eventually(async () => (await statsApi({ link: ids.a, interval: "day", bots: "include", from: ago(24 * 7), to: ago(-1) })).totals.clicks === 7, 30_000, 250);
    expect(seen).toBe(true);
    // What the walk relies on is in the API's contract: top links, sort by clicks, Link.clicks.
    const spec = await body(await fetch(`${s.ingest.url}/openapi.json`));
    const param = (path: string, name: string) => spec.paths[path]?.get?.parameters?.find((p: { name: string }) => p.name === name);
    expect(param("/api/stats", "group_by")?.schema?.enum).toContain("link");
    expect(param("/api/links", "sort")?.schema?.enum).toContain("-clicks");
    expect(spec.components.schemas.Link.properties.clicks).toBeDefined();
  }, 60_000);

  for (const vp of VIEWPORTS) {
    it(`walks every page at ${vp.width}×${vp.height} (${vp.name})`, async () => {
      const dir = join(WALK_SHOTS, vp.name);
      await mkdir(dir, { recursive: true });
      const p = await ctx.newPage();
      await p.setViewportSize({ width: vp.width, height: vp.height });
      p.setDefaultTimeout(15_000);
      const errors: string[] = [];
      p.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
      p.on("pageerror", (e) => errors.push(String(e)));
      const statsAsked: URL[] = [];
      p.on("request", (r) => void (new URL(r.url()).pathname === "/api/stats" && statsAsked.push(new URL(r.url()))));
      let n = 0;

      /** Overflow, axe, screenshot of the page as it is. */
      const check = async (name: string) => {
        const { scrollWidth, innerWidth } = await p.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
        expect(scrollWidth, `${vp.name} ${name}: horizontal overflow`).toBeLessThanOrEqual(innerWidth);
        if (!(await p.evaluate(() => "axe" in window))) await p.evaluate(axe.source);
        const violations = await p.evaluate(async () => {
          const r = await (window as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ["violations"] });
          return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}): ${v.nodes.map((x) => x.target.join(" ")).slice(0, 3).join(", ")}`);
        });
        expect(violations, `${vp.name} ${name}: axe`).toEqual([]);
        await p.screenshot({ path: join(dir, `${String(++n).padStart(2, "0")}-${name}.png`), fullPage: true });
      };
      /** The stats view's query, once loaded, and its numbers on screen. */
      const loaded = async () => {
        await p.locator('.stats-view[data-loaded="true"]').waitFor();
        return p.evaluate(() => {
          const v = document.querySelector<HTMLElement>(".stats-view")!;
          const num = (sel: string) => Number(document.querySelector<HTMLElement>(sel)?.dataset.value);
          const lists = Object.fromEntries(
            [...document.querySelectorAll<HTMLElement>(".breakdown")].map((b) => [b.dataset.dimension!, [...b.querySelectorAll<HTMLElement>("li")].map((li) => ({ value: li.dataset.value!, clicks: Number(li.dataset.clicks), label: li.querySelector(".label")!.textContent! }))]),
          );
          return { query: JSON.parse(v.dataset.query!) as Record<string, string | number>, clicks: num("#total-clicks"), visitors: num("#total-visitors"), lists };
        });
      };
      /** The numbers on screen are the API's for the same query. */
      const sameAsApi = async (shown: Awaited<ReturnType<typeof loaded>>, dims: string[]) => {
        const api = await statsApi(shown.query);
        expect({ clicks: shown.clicks, visitors: shown.visitors }).toEqual(api.totals);
        for (const d of dims) {
          const limit = shown.lists[d]!.length || 8;
          const rows = (await statsApi(shown.query, { group_by: d, limit })).breakdown;
          expect(shown.lists[d]!.map((r) => [r.value, r.clicks]), `breakdown ${d}`).toEqual(rows.map((r: { value: string; clicks: number }) => [r.value, r.clicks]));
        }
        return api;
      };
      const signIn = async (key: string) => {
        await p.goto(`${s.ingest.url}/#/login`);
        await p.getByLabel("API key").fill(key);
        await p.getByRole("button", { name: "Sign in" }).click();
        await p.getByRole("heading", { name: "Overview" }).waitFor();
      };

      // ---- Admin key: the overview (landing page).
      await p.goto(`${s.ingest.url}/#/login`);
      await p.evaluate(() => sessionStorage.clear());
      await p.getByLabel("API key").waitFor();
      await check("sign-in");
      await signIn(s.adminKey);
      await p.getByText("Times in Europe/Berlin").first().waitFor();
      let shown = await loaded();
      expect(shown.query).toMatchObject({ bots: "exclude", tz: "Europe/Berlin" }); // bots excluded by default
      expect(await p.getByLabel("Bot clicks").inputValue()).toBe("exclude");
      await sameAsApi(shown, ["country", "referer_host", "link"]);
      // The totals and series came with the breakdowns: no plain request besides them.
      expect(statsAsked.length).toBeGreaterThanOrEqual(6);
      expect(statsAsked.filter((u) => !u.searchParams.has("group_by")).map(String)).toEqual([]);
      expect(shown.clicks).toBeGreaterThanOrEqual(7);
      expect(shown.lists.referer_host!.find((r) => r.value === "")?.label).toBe("Direct");
      expect(await p.locator("#partial-note").textContent()).toMatch(/partial/);
      await check("overview-admin");

      // ---- The links list, sorted by clicks (when the API sorts by clicks).
      await p.getByRole("navigation").getByRole("link", { name: "Links", exact: true }).click();
      await p.locator("tr[data-link-id]").first().waitFor();
      await p.getByLabel("Sort").selectOption("clicks-desc");
      const api = await get(`/api/links?limit=50&sort=-clicks`);
      await p.waitForFunction((want) => [...document.querySelectorAll<HTMLElement>("tr[data-link-id]")].map((r) => r.dataset.linkId).join() === want, api.items.map((l: { id: number }) => l.id).join());
      const onScreen = await p.locator("td.clicks").evaluateAll((tds) => tds.map((td) => Number((td as HTMLElement).dataset.clicks)));
      expect(onScreen).toEqual(api.items.map((l: { clicks: number }) => l.clicks));
      expect(onScreen).toEqual([...onScreen].sort((x, y) => y - x));
      expect(onScreen.some((c) => c > 0)).toBe(true);
      expect(await p.locator("th[aria-sort=descending]").textContent()).toBe("Clicks");
      // Copy a short link.
      const row = p.locator(`tr[data-link-id="${ids.a}"]`);
      await row.getByRole("button", { name: /^Copy / }).click();
      await row.getByRole("button", { name: "Copied" }).waitFor();
      const linkA = await get(`/api/links/${ids.a}`);
      expect(await p.evaluate(() => navigator.clipboard.readText())).toBe(linkA.short_url);
      await check("links-admin");
      await p.getByLabel("search").fill("zz-no-such-link");
      await p.getByText("No links match “zz-no-such-link”.").waitFor();
      await check("links-no-match");
      await p.getByRole("button", { name: "Clear search" }).click();
      await p.locator("tr[data-link-id]").first().waitFor();
      await p.getByRole("link", { name: "New link" }).click();
      await p.locator('input[name="url"]').waitFor();
      await check("link-form");

      // ---- A link page: bots excluded, then included.
      await p.goto(`${s.ingest.url}/#/links/${ids.a}`);
      await p.locator("#short-url").waitFor();
      expect(await p.locator("#landing-url").textContent()).toBe(mergeUtm(linkA.url, linkA.utm));
      shown = await loaded();
      const excluded = await sameAsApi(shown, ["country", "referer_host", "qr", "utm_source"]);
      await p.locator("#live-waiting:visible, #live-feed li").first().waitFor(); // waiting text until a click streams in
      await check("link-bots-excluded");
      await p.getByLabel("Bot clicks").selectOption("include");
      await p.waitForFunction(() => /"bots":"include"/.test(document.querySelector<HTMLElement>(".stats-view")!.dataset.query!) && document.querySelector<HTMLElement>(".stats-view")!.dataset.loaded === "true");
      shown = await loaded();
      const included = await sameAsApi(shown, ["country", "referer_host"]);
      expect(included.totals.clicks).toBeGreaterThan(excluded.totals.clicks); // the two Googlebot clicks
      await check("link-bots-included");
      await p.getByLabel("Bot clicks").selectOption("exclude");

      // ---- A custom range: the last three days, in the viewer's zone.
      const day = (d: number) => new Date(Date.now() - d * 86_400_000).toLocaleDateString("en-CA", { timeZone: "Europe/Berlin" });
      await p.getByLabel("Time range").selectOption("custom");
      await p.getByLabel("First day").fill(day(2));
      await p.getByLabel("Last day").fill(day(0));
      await p.getByRole("button", { name: "Apply" }).click();
      await p.waitForFunction(() => /"bots":"exclude"/.test(document.querySelector<HTMLElement>(".stats-view")!.dataset.query!) && document.querySelector("#range-label")?.textContent?.includes(" to ") && document.querySelector<HTMLElement>(".stats-view")!.dataset.loaded === "true");
      shown = await loaded();
      expect(shown.query.interval).toBe("day");
      // from is local (Berlin) midnight of the first day.
      expect(new Date(String(shown.query.from)).toLocaleString("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit" })).toBe("00:00");
      await sameAsApi(shown, ["country"]);
      await check("link-custom-range");

      // ---- CSV export of that view, downloaded and parsed.
      const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Export CSV" }).click()]);
      expect(download.suggestedFilename()).toMatch(/^linkflow-link-walk-a_.*_bots-exclude\.csv$/);
      const rows: Record<string, string>[] = parse(await readFile((await download.path())!, "utf8"), { columns: true });
      const total = rows.find((r) => r.section === "total")!;
      expect(Number(total.clicks)).toBe(shown.clicks);
      expect(Number(total.visitors)).toBe(shown.visitors);
      expect(rows.filter((r) => r.section === "series").reduce((a, r) => a + Number(r.clicks), 0)).toBe(shown.clicks);
      expect(rows.filter((r) => r.section === "breakdown" && r.dimension === "country").map((r) => [r.value, Number(r.clicks)])).toEqual(shown.lists.country!.map((r) => [r.value, r.clicks]));

      // Back to a rolling range for what follows.
      await p.getByLabel("Time range").selectOption("7d");
      await p.waitForFunction(() => !document.querySelector("#range-label")?.textContent?.includes(" to "));

      // ---- SRE: says its counts include bots.
      await p.getByRole("navigation").getByRole("link", { name: "SRE" }).click();
      await p.locator("#bots-note").waitFor();
      expect(await p.locator("#bots-note").textContent()).toMatch(/include bots/);
      await p.waitForFunction(() => /%$/.test(document.querySelector("#hit-ratio")?.textContent ?? "") && document.querySelector("#pg-clicks"));
      await check("sre-admin");

      // ---- An unknown link id: says so, with a way back (its 404 is the one expected console error).
      await p.goto(`${s.ingest.url}/#/links/987654`);
      await p.getByRole("heading", { name: "Link not found" }).waitFor();
      await p.getByRole("link", { name: "Back to links" }).waitFor();
      await check("link-not-found");
      const notFound = errors.findIndex((e) => /404/.test(e));
      if (notFound >= 0) errors.splice(notFound, 1);

      // ---- A stats:read key: the overview and link pages, read-only.
      await p.getByRole("button", { name: "Sign out" }).click();
      await p.getByLabel("API key").waitFor();
      await signIn(statsKey);
      shown = await loaded();
      await sameAsApi(shown, ["country", "referer_host"]);
      const navText = await p.getByRole("navigation").textContent();
      expect(navText).toContain("Overview");
      expect(navText).not.toContain("Links");
      expect(await p.getByRole("link", { name: "New link" }).count()).toBe(0);
      await check("overview-stats-key");
      await p.goto(`${s.ingest.url}/#/links/${ids.a}`);
      shown = await loaded();
      await sameAsApi(shown, ["country"]);
      expect(await p.getByRole("link", { name: "Edit" }).count()).toBe(0);
      expect(await p.getByRole("button", { name: "Download QR (PNG)" }).count()).toBe(0);
      await check("link-stats-key");
      await p.getByRole("navigation").getByRole("link", { name: "SRE" }).click();
      await p.locator("#bots-note").waitFor();
      await p.getByText("Pipeline health needs an operator key").waitFor();
      await check("sre-stats-key");

      expect(errors).toEqual([]);
      await p.close();
    }, 120_000);
  }
});
