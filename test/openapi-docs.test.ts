import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "./helpers.ts";

/**
 * /docs offline: the reference page, its scripts and the spec all come from ingest. Chromium
 * (playwright-core, Debian's binary) opens it with every request to another host aborted, and
 * the operations of the spec show up; no request leaves the server, nothing breaks the CSP.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(process.cwd(), "test-results");

let s: Stack;
let profile: string;
let ctx: BrowserContext;
let page: Page;
const problems: string[] = [];
const foreign: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), "linkflow-chromium-"));
  [s, ctx] = await Promise.all([
    startStack({ edge: false }),
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 900 },
    }),
  ]);
  page = ctx.pages()[0] ?? (await ctx.newPage());
  const origin = new URL(s.ingest.url).origin;
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin || url.startsWith("blob:") || url.startsWith("data:")) return route.continue();
    foreign.push(url);
    return route.abort();
  });
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

describe("/docs", () => {
  it("lists the API's operations with nothing but this server", async () => {
    await page.goto(`${s.ingest.url}/docs`);
    await page.getByText("Linkflow API (1.0.0)").waitFor({ timeout: 20_000 });
    for (const path of ["/api/links/info", "/api/links/export"]) await page.getByText(path, { exact: true }).first().waitFor();
    // The sidebar lists each tag's operations by summary.
    const sidebar = page.locator(".menu-content");
    for (const [tag, summaries] of [
      ["stats", ["Live clicks as server-sent events", "Clicks per second over the last 60 seconds"]],
      ["pipeline", ["Put dead letters back into the outbox (all, or the ids given)"]],
      ["domains", ["Verify a claimed domain by its DNS TXT record"]],
    ] as const) {
      await sidebar.getByText(tag, { exact: true }).click();
      for (const summary of summaries) await sidebar.getByText(summary, { exact: true }).waitFor();
    }
    await page.screenshot({ path: join(SHOTS, "docs.png") });
    expect(foreign).toEqual([]);
    // Redoc's "API docs by Redocly" logo is an image on its CDN: the CSP refuses it (no request
    // is made) and Redoc hides it. Anything else refused or thrown fails the test.
    expect(problems.filter((p) => !/^Loading the image 'https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini(-full)?\.svg' violates/.test(p))).toEqual([]);
  }, 40_000);
});
