import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The README leads (what Linkflow is, the two commands, start, layout, tests, guarantees) and
 * the rest lives in docs/: these keep it short and keep every link between them working.
 */
const root = resolve(import.meta.dirname, "..");
const readme = join(root, "README.md");
const docs = readdirSync(join(root, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((f) => join(root, "docs", f));

/** Markdown outside fenced code blocks, with inline code spans removed. */
function prose(text: string): string[] {
  let fenced = false;
  const lines: string[] = [];
  for (const line of text.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (!fenced) lines.push(line.replace(/`[^`]*`/g, ""));
  }
  return lines;
}

/** The anchors GitHub gives a file's headings (github-slugger: lower case, punctuation dropped, spaces to '-', repeats numbered). */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = (m[1] ?? "").replace(/\[([^\]]*)\]\([^)]*\)/g, "$1"); // a link in a heading keeps its text
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link target of a file: `[text](target)`, not web addresses. */
function relativeLinks(file: string): string[] {
  const targets: string[] = [];
  for (const line of prose(readFileSync(file, "utf8"))) {
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1] ?? "";
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) targets.push(target);
    }
  }
  return targets;
}

describe("README.md", () => {
  const text = readFileSync(readme, "utf8");

  it("is under 300 lines", () => {
    expect(text.split("\n").length).toBeLessThan(300);
  });

  it("gives the two commands", () => {
    expect(text).toContain("npm ci && npm start");
    expect(text).toContain("npm ci && npm test");
  });

  it("names the test command CI runs", () => {
    // .ci/run runs exactly the README's test command.
    expect(readFileSync(join(root, ".ci", "run"), "utf8").split("\n")).toContain("npm test");
  });
});

describe("links in README.md and docs/*.md", () => {
  for (const file of [readme, ...docs]) {
    it(`${relative(root, file)}: every relative link points at a file, and every #anchor at a heading`, () => {
      const broken: string[] = [];
      for (const target of relativeLinks(file)) {
        const [path = "", anchor] = target.split("#", 2);
        const dest = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
        if (!existsSync(dest)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (anchor !== undefined && anchor !== "") {
          if (!statSync(dest).isFile() || !dest.endsWith(".md")) broken.push(`${target}: anchor into a non-Markdown target`);
          else if (!anchors(dest).has(decodeURIComponent(anchor).toLowerCase())) broken.push(`${target}: no such heading`);
        }
      }
      expect(broken).toEqual([]);
    });
  }

  it("finds the links it checks (the parser is not blind)", () => {
    expect(relativeLinks(readme)).toContain("docs/OPERATIONS.md#dashboard");
    expect(anchors(join(root, "docs", "CONFIGURATION.md"))).toContain("ingest-and-npm-start");
    expect(anchors(join(root, "docs", "OPERATIONS.md"))).toContain("known-limits-today");
  });
});
