import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { csvSafe, csvUnsafe, exportCsv, parseImport } from "./csv.ts";
import type { LinkRow } from "./row.ts";

const row = (over: Partial<LinkRow>): LinkRow => ({
  id: "1",
  workspace_id: "1",
  domain: "",
  code: "abc1234",
  url: "https://example.com/",
  redirect_status: 302,
  title: null,
  tags: [],
  expires_at: null,
  expired_url: null,
  max_clicks: null,
  password_hash: null,
  targeting: [],
  utm: {},
  archived: false,
  forward_query: true,
  crawlable: false,
  limit_reached_at: null,
  created_at: new Date("2026-11-01T00:00:00Z"),
  updated_at: new Date("2026-11-01T00:00:00Z"),
  ...over,
});

describe("CSV formula injection", () => {
  it("quotes cells a spreadsheet would run as a formula, and only those", () => {
    for (const v of ["=1+1", "+1", "-2", "@SUM(A1)", "\t=x", "\r=x"]) expect(csvSafe(v)).toBe(`'${v}`);
    for (const v of ["plain", "a=b", "https://x.test/?a=-1", "", "'quoted"]) expect(csvSafe(v)).toBe(v);
    for (const v of ["=1+1", "-2", "plain", "'quoted"]) expect(csvUnsafe(csvSafe(v))).toBe(v);
    // a formula after leading line breaks (and whitespace around them)
    for (const v of ["\n=HYPERLINK(\"https://evil.test\")", "\r\n+1", "\n\n@SUM(A1)", " \n -2", "\n\t=x", "\r \r\n="]) {
      expect(csvSafe(v)).toBe(`'${v}`);
      expect(csvUnsafe(csvSafe(v))).toBe(v);
    }
    for (const v of ["\nplain", "\n a=b", " =x", "a\n=b"]) expect(csvSafe(v)).toBe(v);
  });

  it("the export has no cell starting with a formula character, and re-imports unchanged", () => {
    const title = '=HYPERLINK("https://evil.test","click")';
    const csv = exportCsv([row({ title, tags: ["@team", "-x"], utm: { utm_campaign: "+promo" } })], "http://localhost:8787", true);
    const cells = (parse(csv) as string[][]).flat();
    expect(cells.filter((c) => /^[=+\-@\t\r]/.test(c))).toEqual([]);
    expect(cells).toContain(`'${title}`);
    const { items } = parseImport(csv, new Set());
    expect(items[0]).toMatchObject({ title, tags: ["@team", "-x"], utm: { utm_campaign: "+promo" } });
  });
});
