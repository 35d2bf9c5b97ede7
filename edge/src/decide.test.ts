import { describe, expect, it } from "vitest";
import type { EdgeLink } from "../../shared/event.ts";
import { decide } from "./decide.ts";

const link: EdgeLink = { id: 1, domain: "", code: "c", url: "https://example.com/", status: 308 };

describe("decide", () => {
  it("redirects with the link's own status and the tier that answered", () => {
    expect(decide({ link, tier: "isolate" })).toEqual({ kind: "redirect", status: 308, location: link.url, link, tier: "isolate" });
  });
  it("answers not_found for a known miss and unavailable when the origin could not say", () => {
    expect(decide({ link: null, tier: "origin" })).toEqual({ kind: "not_found" });
    expect(decide({ link: undefined, tier: "origin" })).toEqual({ kind: "unavailable" });
  });
});
