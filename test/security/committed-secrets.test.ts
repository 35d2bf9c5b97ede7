import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * "No secrets committed": every file git tracks is scanned for what a leaked secret looks like.
 * Test fixtures use obviously fake values (all-A prefixes, "test-…" secrets), which the patterns
 * below do not match; a real generated key (`lf_<8>_<32 base64url>`), a private key block, an AWS
 * access key id or a data/ folder (PGlite files, the generated admin key) would.
 */
const ROOT = resolve(import.meta.dirname, "../..");

const PATTERNS: [string, RegExp][] = [
  // generateKey(): lf_ + 8-char prefix (no - or _) + 32 base64url characters.
  ["Linkflow API key", /\blf_(?!AAAAAAAA)[A-Za-z0-9]{8}_[A-Za-z0-9_-]{32}\b/],
  ["private key", /-----BEGIN (?:RSA |EC |OPENSSH |)PRIVATE KEY-----/],
  ["AWS access key id", /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/],
  ["AWS secret assignment", /aws_secret_access_key\s*[=:]\s*['"]?[A-Za-z0-9/+]{40}/i],
  ["Cloudflare API token assignment", /CLOUDFLARE_API_TOKEN\s*[=:]\s*['"]?[A-Za-z0-9_-]{40}/],
];

const tracked = (): string[] => execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);

describe("no secrets committed", () => {
  it("the repository tracks files (the scan below is not vacuous)", () => {
    const files = tracked();
    expect(files).toContain("package.json");
    expect(files.length).toBeGreaterThan(50);
  });

  it("no tracked file holds a key, a private key or a credential; no runtime data is tracked", () => {
    const hits: string[] = [];
    for (const file of tracked()) {
      if (/^(data|\.wrangler|node_modules)\//.test(file) || /(^|\/)\.env(\..+)?$/.test(file) || file.endsWith("admin-key")) hits.push(`${file}: runtime data or env file is tracked`);
      if (file === "package-lock.json" || /\.(png|ico|woff2?)$/.test(file)) continue;
      const text = readFileSync(resolve(ROOT, file), "utf8");
      for (const [what, re] of PATTERNS) {
        const m = re.exec(text);
        if (m) hits.push(`${file}: ${what} (${m[0].slice(0, 10)}…)`);
      }
    }
    expect(hits).toEqual([]);
  });

  it("the patterns catch what they are meant to", () => {
    // A key in generateKey()'s format and the other shapes must match, or the scan above proves nothing.
    // The samples are concatenated so that this file itself does not hold the shapes it scans for.
    const samples = ["lf_Ab3dEf9h_" + "x".repeat(32), "-----BEGIN " + "PRIVATE KEY-----", "AKIA" + "ABCDEFGHIJKLMNOP", "aws_secret_access_key = " + "a".repeat(40)];
    for (const s of samples) expect(PATTERNS.some(([, re]) => re.test(s)), s).toBe(true);
  });
});
