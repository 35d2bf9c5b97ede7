import { toJSONSchema } from "zod";
import * as zm from "zod/mini";
import { describe, expect, it } from "vitest";
import { TargetingRuleSchema } from "../ingest/src/links/schema.ts";
import { targetingRuleSchema } from "../shared/edge-link.ts";

/**
 * A targeting rule is checked twice: by the API (ingest/src/links/schema.ts, zod classic, for
 * OpenAPI) and by the worker on pushed records (shared/edge-link.ts, zod/mini, for the bundle
 * size). Their conditions must not drift apart, or the API would take rules the edge refuses.
 */
describe("targeting rule", () => {
  it("has the same conditions in the API and at the edge (the URL is length-checked by each side's own rule)", () => {
    const conditions = (schema: { properties: Record<string, unknown> }) => {
      const { url, ...rest } = schema.properties;
      return { ...schema, properties: rest, url: typeof url };
    };
    const api = toJSONSchema(TargetingRuleSchema) as unknown as { properties: Record<string, unknown> };
    const edge = zm.toJSONSchema(targetingRuleSchema) as unknown as { properties: Record<string, unknown> };
    expect(Object.keys(edge.properties)).toEqual(["country", "device", "os", "language", "url"]);
    expect(conditions(edge)).toEqual(conditions(api));
  });
});
