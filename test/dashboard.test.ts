import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../dashboard/build.ts";
import { startStack, type Stack } from "./helpers.ts";

/**
 * The dashboard in Debian's Chromium (playwright-core drives it; no browser download): sign in,
 * create a link through the form, follow it at the edge, and watch the click arrive in the
 * per-link chart and the live counter; then the links list and the SRE page. Screenshots of
 * every page go to test-results/.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(process.cwd(), "test-results");

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
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
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
    await page.getByRole("heading", { name: "Links" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("linkflow.apiKey"))).toBe(s.adminKey);

    // Create through the form.
    await page.getByRole("link", { name: "New link" }).click();
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
    await page.getByText("No links yet.").waitFor();
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
