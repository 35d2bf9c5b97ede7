import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TYPES, apiTypes, lintSpec } from "../scripts/openapi.ts";
import { startStack, type Stack } from "./helpers.ts";

/**
 * The served /openapi.json as a contract others build on: Redocly's linter (redocly.yaml) finds
 * nothing in it, and the client types generated from it are the ones committed in
 * shared/api-types.ts (the dashboard is compiled against them), so a change to a route that is
 * not regenerated (`npm run gen:api`) fails here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let spec: any;
let s: Stack;

beforeAll(async () => {
  s = await startStack({ edge: false });
  spec = await (await fetch(`${s.ingest.url}/openapi.json`)).json();
});
afterAll(async () => {
  await s?.close();
});

describe("/openapi.json", () => {
  it("passes Redocly's lint with no errors and no warnings", async () => {
    const report = await lintSpec(spec);
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? "?"}`);
    expect(problems).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.warnings).toBe(0);
  }, 60_000);

  it("generates exactly the committed shared/api-types.ts (else: npm run gen:api)", async () => {
    expect(await apiTypes(spec)).toBe(await readFile(API_TYPES, "utf8"));
  }, 30_000);
});
