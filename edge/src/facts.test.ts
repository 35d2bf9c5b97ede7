import { describe, expect, it } from "vitest";
import { parseAgent, parseLanguages, qrVisit, requestFacts } from "./facts.ts";

const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  android: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
  ipad: "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  androidTablet: "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  windows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  mac: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  linux: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
};

describe("parseAgent", () => {
  it("classifies devices and names the OS as ua-parser-js does", () => {
    expect(parseAgent(UA.iphone)).toEqual({ device: "mobile", os: "iOS" });
    expect(parseAgent(UA.android)).toEqual({ device: "mobile", os: "Android" });
    expect(parseAgent(UA.ipad)).toEqual({ device: "tablet", os: "iOS" });
    expect(parseAgent(UA.androidTablet)).toEqual({ device: "tablet", os: "Android" });
    expect(parseAgent(UA.windows)).toEqual({ device: "desktop", os: "Windows" });
    expect(parseAgent(UA.mac)).toEqual({ device: "desktop", os: "macOS" });
    expect(parseAgent(UA.linux)).toEqual({ device: "desktop", os: "Linux" });
  });
  it("treats an empty or unknown agent as a desktop with no OS", () => {
    expect(parseAgent("")).toEqual({ device: "desktop", os: "" });
    expect(parseAgent("curl/8.5.0")).toEqual({ device: "desktop", os: "" });
  });
});

describe("parseLanguages", () => {
  it("gives primary subtags in q order, without duplicates, wildcards or q=0", () => {
    expect(parseLanguages("de-CH, fr;q=0.9, en-US;q=0.8, de;q=0.7, *;q=0.5")).toEqual(["de", "fr", "en"]);
    expect(parseLanguages("en;q=0.2, pt-BR, es;q=0.5, it;q=0")).toEqual(["pt", "es", "en"]);
    expect(parseLanguages("")).toEqual([]);
    expect(parseLanguages(null)).toEqual([]);
    expect(parseLanguages("x-klingon, 1234, ;;;")).toEqual([]);
  });
  it("reads only the first 20 entries of a hostile header", () => {
    expect(parseLanguages(Array.from({ length: 1000 }, (_, i) => (i === 500 ? "fr" : "de")).join(","))).toEqual(["de"]);
  });
});

describe("requestFacts", () => {
  it("reads the country and ?qr=1 at once, the agent and languages lazily", () => {
    const req = new Request("https://s.example/abc?qr=1", { headers: { "user-agent": UA.iphone, "accept-language": "fr-FR,en;q=0.5" } });
    Object.defineProperty(req, "cf", { value: { country: "FR" } });
    const f = requestFacts(req, 5);
    expect(f).toMatchObject({ now: 5, country: "FR", qr: true, query: "qr=1", post: false });
    expect(requestFacts(new Request("https://s.example/abc"), 5).query).toBe("");
    expect(f.agent()).toEqual({ device: "mobile", os: "iOS" });
    expect(f.agent()).toBe(f.agent()); // parsed once
    expect(f.languages()).toEqual(["fr", "en"]);
  });
  it("marks a HEAD request (never counted) and nothing else", () => {
    expect(requestFacts(new Request("https://s.example/abc", { method: "HEAD" }), 5).head).toBe(true);
    expect(requestFacts(new Request("https://s.example/abc"), 5).head).toBe(false);
  });
  it("marks QR visits only for qr=1", () => {
    expect(qrVisit("https://s.example/abc")).toBe(false);
    expect(qrVisit("https://s.example/abc?qr=0")).toBe(false);
    expect(qrVisit("https://s.example/abc?x=1&qr=1")).toBe(true);
  });
});
