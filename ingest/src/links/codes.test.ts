import { describe, expect, it } from "vitest";
import { CODE_LENGTH, isAllowedSlug, randomCode } from "./codes.ts";

describe("codes", () => {
  it("draws base62 codes of at least 7 characters, spread over the alphabet", () => {
    const codes = Array.from({ length: 2000 }, () => randomCode());
    for (const c of codes) expect(c).toMatch(/^[0-9A-Za-z]{7}$/);
    expect(CODE_LENGTH).toBeGreaterThanOrEqual(7);
    expect(new Set(codes).size).toBe(codes.length);
    expect(new Set(codes.join("")).size).toBe(62);
  });
  it("accepts safe custom slugs and refuses reserved or unsafe ones", () => {
    for (const ok of ["my-sale", "Spring_2026", "a", "x".repeat(64)]) expect(isAllowedSlug(ok)).toBe(true);
    for (const bad of ["", "x".repeat(65), "-lead", "a/b", "a b", "../etc", "API", "_admin", "a%2F", "ünï"]) expect(isAllowedSlug(bad)).toBe(false);
  });
});
