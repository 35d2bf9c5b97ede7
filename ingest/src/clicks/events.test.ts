import { describe, expect, it } from "vitest";
import { CLICK_EVENT_VERSION, CLICK_EVENT_VERSIONS } from "../../../shared/event.ts";
import { isDomainError } from "../errors.ts";
import { batchSchema, eventSchema } from "./events.ts";

/** A version 1 event: today's shape before versions existed (no `v`). */
const v1 = {
  click_id: "00000000-0000-4000-8000-000000000001",
  short_url: "http://localhost:8787/abc1234",
  original_url: "https://example.com/landing",
  timestamp: "2026-03-01T10:00:00.000Z",
  user_agent: "Mozilla/5.0 (test)",
  ip_address: "203.0.113.7",
  referer: "",
  geo_location: { country: "DE", colo: "FRA" },
  domain: "",
  code: "abc1234",
  link_id: 1,
  redirect_status: 302,
  cache_tier: "origin",
};
const current = { ...v1, v: CLICK_EVENT_VERSION, origin_ms: 42, isolate_id: "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab", seq: 7 };

/** The first issue's field and message, or the domain error's code. */
function outcome(value: unknown) {
  try {
    const r = eventSchema.safeParse(value);
    return r.success ? "ok" : `${r.error.issues[0]!.path.join(".")}: ${r.error.issues[0]!.message}`;
  } catch (err) {
    if (isDomainError(err)) return `${err.code} (${err.field})`;
    throw err;
  }
}

describe("click event versions", () => {
  it("takes the current and the previous versions", () => {
    expect(CLICK_EVENT_VERSIONS).toEqual([1, 2, CLICK_EVENT_VERSION]);
    expect(eventSchema.parse(v1)).toEqual(v1);
    expect(eventSchema.parse({ ...v1, v: 1 })).toEqual({ ...v1, v: 1 });
    expect(eventSchema.parse(current)).toEqual(current);
    // origin_ms is optional in version 2 (only origin-tier clicks have one); null means not measured.
    expect(outcome({ ...v1, v: 2, cache_tier: "kv" })).toBe("ok");
    expect(outcome({ ...current, origin_ms: null })).toBe("ok");
    expect(outcome({ ...current, origin_ms: 0 })).toBe("ok");
    // Both versions in one batch.
    expect(batchSchema.parse([v1, current])).toEqual([v1, current]);
  });

  it("version 3 numbers the click in its isolate: both fields or neither", () => {
    const { isolate_id: _i, seq: _s, ...unnumbered } = current;
    expect(outcome(unnumbered)).toBe("ok");
    expect(outcome({ ...current, isolate_id: null, seq: null })).toBe("ok");
    expect(outcome({ ...unnumbered, seq: 7 })).toBe("isolate_id: isolate_id and seq come together");
    expect(outcome({ ...unnumbered, isolate_id: current.isolate_id })).toBe("seq: isolate_id and seq come together");
    expect(outcome({ ...v1, v: 2, isolate_id: current.isolate_id, seq: 1 })).toMatch(/^isolate_id: is a version 3 field; the event is version 2/);
    for (const seq of [0, -1, 1.5, "3"]) expect(outcome({ ...current, seq })).toMatch(/^seq: /);
    expect(outcome({ ...current, isolate_id: "isolate-1" })).toMatch(/^isolate_id: /);
  });

  it("refuses a field the event's version does not have", () => {
    expect(outcome({ ...v1, origin_ms: 42 })).toBe("origin_ms: is a version 2 field; the event is version 1");
    expect(outcome({ ...v1, v: 1, origin_ms: 42 })).toBe("origin_ms: is a version 2 field; the event is version 1");
    expect(outcome({ ...v1, v: 1, origin_ms: null })).toMatch(/^origin_ms: is a version 2 field/);
  });

  it("refuses a version newer than it knows with its own code, before the strict schema reads its new fields", () => {
    expect(outcome({ ...current, v: CLICK_EVENT_VERSION + 1 })).toBe("unsupported_event_version (v)");
    expect(outcome({ ...current, v: CLICK_EVENT_VERSION + 1, field_from_the_future: "x" })).toBe("unsupported_event_version (v)");
    expect(() => batchSchema.safeParse([v1, { ...current, v: 99 }])).toThrow(/click event version 99 is newer than this ingest reads \(versions 1, 2, 3\)/);
  });

  it("refuses what is no version at all as an invalid field", () => {
    for (const v of [0, -1, 1.5, "2", null, true]) expect(outcome({ ...current, v })).toMatch(/^v: /);
    for (const origin_ms of [-1, 1.5, "42", 2 ** 31]) expect(outcome({ ...current, origin_ms })).toMatch(/^origin_ms: /);
  });
});
