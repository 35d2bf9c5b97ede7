import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Fixes to installed packages are patch-package diffs in patches/<name>+<version>.patch, applied
 * by `npm ci` (postinstall). A diff that no longer applies, or a package whose version moved away
 * from the patch's, must fail the install rather than leave node_modules silently unpatched.
 */
const ROOT = resolve(import.meta.dirname, "..");
const read = (rel: string) => readFileSync(join(ROOT, rel), "utf8");
const patches = readdirSync(join(ROOT, "patches")).filter((f) => f.endsWith(".patch"));

/** Each hunk of a diff as the lines it leaves in the file (context and added lines), per file. */
function postImages(diff: string): { file: string; block: string }[] {
  const out: { file: string; block: string }[] = [];
  let file = "";
  let lines: string[] | null = null;
  const flush = () => lines && lines.length && out.push({ file, block: lines.join("\n") });
  for (const line of diff.split("\n")) {
    if (line.startsWith("diff --git ")) {
      flush();
      lines = null;
      file = line.split(" b/")[1]!;
    } else if (line.startsWith("@@")) {
      flush();
      lines = [];
    } else if (lines && (line.startsWith(" ") || line.startsWith("+"))) lines.push(line.slice(1));
  }
  flush();
  return out;
}

describe("node_modules patches", () => {
  it("npm ci applies them with patch-package, failing on an error or a version mismatch", () => {
    const postinstall = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.postinstall!;
    expect(postinstall.split(" ")).toEqual(expect.arrayContaining(["patch-package", "--error-on-fail", "--error-on-warn"]));
  });

  it("each names the version installed, and the installed files carry its changes", () => {
    expect(patches).toContain("postgres+3.4.9.patch");
    for (const name of patches) {
      const [, pkg, version] = /^(.+)\+([^+]+)\.patch$/.exec(name)!;
      expect((JSON.parse(read(`node_modules/${pkg}/package.json`)) as { version: string }).version, name).toBe(version);
      const hunks = postImages(read(`patches/${name}`));
      expect(hunks.length, name).toBeGreaterThan(0);
      for (const { file, block } of hunks) {
        expect(file.startsWith(`node_modules/${pkg}/`), file).toBe(true);
        expect(read(file), `${name}: ${file}`).toContain(block);
      }
    }
  });
});
