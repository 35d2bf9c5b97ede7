import { describe, expect, it } from "vitest";
import { hashPassword, verifyPassword } from "./password.ts";
import { mergeUtm } from "./utm.ts";

describe("link passwords", () => {
  it("verifies the right password only, and never stores it", async () => {
    const h = await hashPassword("s3cret pass", 1000);
    expect(h).toMatch(/^pbkdf2-sha256\$1000\$[\w-]+\$[\w-]+$/);
    expect(h).not.toContain("s3cret");
    expect(await verifyPassword("s3cret pass", h)).toBe(true);
    expect(await verifyPassword("s3cret pasS", h)).toBe(false);
    expect(await verifyPassword("", h)).toBe(false);
    expect(await hashPassword("same", 1000)).not.toBe(await hashPassword("same", 1000)); // salted
  });
  it("refuses malformed stored values instead of throwing", async () => {
    for (const bad of ["", "plain", "md5$1$a$b", "pbkdf2-sha256$x$a$b", "pbkdf2-sha256$10$!!$??", "pbkdf2-sha256$99999999$a$b"])
      expect(await verifyPassword("x", bad)).toBe(false);
  });
});

describe("mergeUtm", () => {
  it("appends missing UTM parameters and keeps existing ones untouched", () => {
    expect(mergeUtm("https://ex.com/p?a=1", { utm_source: "news", utm_medium: "email" })).toBe("https://ex.com/p?a=1&utm_source=news&utm_medium=email");
    expect(mergeUtm("https://ex.com/p?utm_source=ads", { utm_source: "news", utm_campaign: "x" })).toBe("https://ex.com/p?utm_source=ads&utm_campaign=x");
    expect(mergeUtm("https://ex.com/#frag", { utm_source: "a b" })).toBe("https://ex.com/?utm_source=a+b#frag");
    expect(mergeUtm("https://ex.com/p", undefined)).toBe("https://ex.com/p");
  });
});
