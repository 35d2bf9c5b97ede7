import { describe, expect, it } from "vitest";
import { hostnameOf, originOf } from "./url.ts";

// Serialised, as Request.url is (a Request from the network carries no credentials).
const urls = [
  "http://localhost:8787/abc",
  "https://GO.Example:443/a?b=1",
  "http://go.example:80/x/y",
  "https://xn--bcher-kva.example/c",
  "http://[::1]:8787/c",
  "http://[2001:db8::1]/c?x=1",
  "http://u:p@host.example/c",
  "https://go.example",
  "http://127.0.0.1:8787/abc?qr=1#f",
  "https://Bücher.example/x",
].map((raw) => new URL(raw).href);

describe("originOf", () => {
  it("is what the URL parser says the origin of a request URL is", () => {
    for (const url of urls) expect(originOf(url)).toBe(new URL(url).origin);
  });
});

describe("hostnameOf", () => {
  it("is what the URL parser says the hostname of a request URL is", () => {
    for (const url of urls) expect(hostnameOf(url), url).toBe(new URL(url).hostname);
  });
});
