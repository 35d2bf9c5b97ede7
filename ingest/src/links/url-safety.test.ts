import { describe, expect, it } from "vitest";
import { checkUrl, normaliseHost, ownHostsOf } from "./url-safety.ts";

describe("checkUrl", () => {
  it("accepts plain http(s) URLs and returns the normalised form and host", () => {
    expect(checkUrl("https://example.com/a?b=1#c")).toEqual({ ok: true, url: "https://example.com/a?b=1#c", host: "example.com" });
    expect(checkUrl("HTTP://Example.COM")).toEqual({ ok: true, url: "http://example.com/", host: "example.com" });
    expect(checkUrl("https://bücher.example/x")).toMatchObject({ ok: true, host: "xn--bcher-kva.example" });
    expect(checkUrl("https://example.com/a%20b?q=%E2%9C%93")).toMatchObject({ ok: true });
    expect(checkUrl("https://example.com:8443/p")).toMatchObject({ ok: true, host: "example.com" });
  });

  it.each([
    ["javascript:alert(1)", /scheme/],
    ["JaVaScRiPt:alert(1)", /scheme/],
    ["data:text/html,<script>", /scheme|whitespace/],
    ["file:///etc/passwd", /scheme/],
    ["vbscript:msgbox(1)", /scheme/],
    ["ftp://example.com/", /scheme/],
    ["//example.com/x", /absolute/],
    ["https:example.com", /scheme:\/\/host/],
    ["https://user:pass@example.com/", /credentials/],
    ["https://user@example.com/", /credentials/],
    ["https://example.com/\r\nSet-Cookie: a=b", /control/],
    ["https://example.com/%0d%0aSet-Cookie:a=b", /control/],
    ["https://example.com/%250D%250A", /control/],
    ["https://example.com/\tx", /control/],
    ["https://exa mple.com/", /whitespace/],
    [" https://example.com/", /whitespace/],
    ["https://example.com\\@evil.com/", /backslash/],
    ["https:\\\\evil.com", /scheme:\/\/host/],
    ["https:///path", /no host/],
    ["https://:443/", /no host/],
    ["https://example.com/\u202egnp.exe", /control/],
    ["https://example.com/" + "a".repeat(2048), /longer/],
    ["", /empty/],
    ["https://exa<mple.com/", /parsed/],
  ])("refuses %j", (raw, reason) => {
    const r = checkUrl(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});

describe("own hosts", () => {
  it("normalises IDN, case and trailing dots", () => {
    expect(normaliseHost("BÜCHER.example.")).toBe("xn--bcher-kva.example");
    expect(normaliseHost("LocalHost")).toBe("localhost");
    expect([...ownHostsOf("https://Lnk.Example:8443", "localhost, 127.0.0.1,")]).toEqual(["lnk.example", "localhost", "127.0.0.1"]);
  });
});
