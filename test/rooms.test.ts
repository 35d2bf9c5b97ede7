import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The import rules of the layout (README "Layout"): a file's folder tells its layer, and imports
 * run one way. Read from the source as text: every `import … from`, `export … from` and
 * `import("…")` of a relative path, type-only imports marked as such.
 */
const ROOT = normalize(join(import.meta.dirname, ".."));

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const rel = join(dir, name);
    if (name === "node_modules") return [];
    if (statSync(join(ROOT, rel)).isDirectory()) return sources(rel);
    return /\.(ts|mjs)$/.test(name) && !/\.test\.ts$/.test(name) ? [rel] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function edgesOf(file: string): Edge[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const out: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4]!;
    const typeOnly = Boolean(m[2]);
    out.push({ from: file, to: spec.startsWith(".") ? relative(ROOT, join(ROOT, dirname(file), spec)) : spec, typeOnly });
  }
  return out;
}

const FOLDERS = ["ingest/src", "edge", "shared", "cli", "dashboard/src", "scripts"];
const edges = FOLDERS.flatMap(sources).flatMap(edgesOf);
const under = (path: string, ...dirs: string[]) => dirs.some((d) => path === d || path.startsWith(d + "/"));
const broken = (rule: (e: Edge) => boolean) => edges.filter(rule).map((e) => `${e.from} → ${e.to}${e.typeOnly ? " (type)" : ""}`);

const DOMAIN = ["links", "clicks", "auth", "db", "pipeline", "analytics", "webhooks"].map((d) => `ingest/src/${d}`);

describe("rooms", () => {
  it("the scan sees the code (not vacuous)", () => {
    expect(edges.length).toBeGreaterThan(200);
    expect(edges.some((e) => e.from === "ingest/src/http/app.ts" && e.to === "ingest/src/links/store.ts")).toBe(true);
  });

  it("domain code never imports the HTTP layer or a web framework", () => {
    expect(broken((e) => under(e.from, ...DOMAIN) && under(e.to, "ingest/src/http"))).toEqual([]);
    // The link schema describes the API's bodies (@hono/zod-openapi adds OpenAPI metadata to zod); nothing else.
    expect(broken((e) => under(e.from, ...DOMAIN) && /^(hono|@hono\/node-server)(\/|$)/.test(e.to))).toEqual([]);
    expect(broken((e) => under(e.from, ...DOMAIN) && e.to === "@hono/zod-openapi" && e.from !== "ingest/src/links/schema.ts")).toEqual([]);
  });

  it("only the composition root and the HTTP layer know the whole service", () => {
    // server.ts composes; main.ts starts; nothing below imports them.
    expect(broken((e) => e.to === "ingest/src/server.ts" && !["ingest/src/main.ts"].includes(e.from) && under(e.from, "ingest/src"))).toEqual([]);
    expect(broken((e) => e.to === "ingest/src/http/app.ts" && e.from !== "ingest/src/server.ts" && under(e.from, "ingest/src"))).toEqual([]);
  });

  it("shared/ depends on nothing of the sides that share it; the worker and ingest never import each other", () => {
    expect(broken((e) => under(e.from, "shared") && under(e.to, "ingest", "edge", "dashboard", "cli", "scripts", "bench", "test"))).toEqual([]);
    expect(broken((e) => under(e.from, "edge/src") && under(e.to, "ingest"))).toEqual([]);
    expect(broken((e) => under(e.from, "ingest/src") && under(e.to, "edge"))).toEqual([]);
    // The dashboard and the CLI are API clients: they talk HTTP, never import the server.
    expect(broken((e) => under(e.from, "dashboard/src", "cli") && under(e.to, "ingest") && !e.typeOnly)).toEqual([]);
  });

  it("no import circles inside ingest (type-only imports included)", () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) if (under(e.from, "ingest/src") && under(e.to, "ingest/src")) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const circles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const walk = (node: string, path: string[]) => {
      if (state.get(node) === "done") return;
      if (state.get(node) === "open") return void circles.push([...path.slice(path.indexOf(node)), node].join(" → "));
      state.set(node, "open");
      for (const next of graph.get(node) ?? []) walk(next, [...path, node]);
      state.set(node, "done");
    };
    for (const node of graph.keys()) walk(node, []);
    expect(circles).toEqual([]);
  });
});
