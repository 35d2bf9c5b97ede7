import { readFileSync } from "node:fs";
import { parse } from "smol-toml";
import { expect, it } from "vitest";

/** Configuration by environment variables, all listed: docs/CONFIGURATION.md names every one. */
const doc = readFileSync(new URL("../docs/CONFIGURATION.md", import.meta.url), "utf8");
const listed = (name: string) => doc.includes("`" + name + "`");

it("lists every variable ingest reads (ingest/src/config.ts)", () => {
  const config = readFileSync(new URL("../ingest/src/config.ts", import.meta.url), "utf8");
  const names = [...config.matchAll(/^ {2}([A-Z][A-Z0-9_]+): z\./gm)].map((m) => m[1]!);
  expect(names.length).toBeGreaterThan(40);
  expect(names.filter((n) => !listed(n))).toEqual([]);
});

it("lists every worker variable (wrangler.toml [vars]) and EDGE_SECRET", () => {
  const vars = Object.keys((parse(readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8")) as { vars: Record<string, string> }).vars);
  expect(vars.length).toBeGreaterThan(10);
  expect([...vars, "EDGE_SECRET", "EDGE_SECRET_PREVIOUS"].filter((n) => !listed(n))).toEqual([]);
});
