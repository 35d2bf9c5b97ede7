import { readFileSync } from "node:fs";
import { parse } from "smol-toml";
import { expect, it } from "vitest";

/** wrangler.toml: environments do not inherit [vars] or KV bindings, so each must list them all. */
it("gives every deployment environment the same bindings as the local worker", () => {
  const cfg = parse(readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8")) as {
    vars: Record<string, string>;
    kv_namespaces: { binding: string }[];
    env: Record<string, { vars: Record<string, string>; kv_namespaces: { binding: string }[]; routes: unknown[] }>;
  };
  const envInterface = readFileSync(new URL("../edge/src/env.ts", import.meta.url), "utf8");
  for (const name of Object.keys(cfg.vars)) expect(envInterface).toContain(`${name}: string;`);
  expect(Object.keys(cfg.env).sort()).toEqual(["production", "staging"]);
  for (const [name, env] of Object.entries(cfg.env)) {
    expect(Object.keys(env.vars).sort(), name).toEqual(Object.keys(cfg.vars).sort());
    expect(env.kv_namespaces.map((k) => k.binding), name).toEqual(cfg.kv_namespaces.map((k) => k.binding));
    expect(env.routes.length, name).toBeGreaterThan(0);
  }
});
