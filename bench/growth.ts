/**
 * Growth with clicks, side by side: `npm run bench:growth -- DIR DIR …` over folders kept by
 * `npm run bench:stats -- --clicks N --keep` (say 1M, 10M and 50M). Timing each size in a run of
 * its own put minutes or hours between the two sides of a ratio, and this machine's speed drifts
 * by more than the margin the issue gives (a shape timed 74 ms in one minute, 91 ms on the same
 * folder later). Here every size is open at once (one serving process each, as chDB allows one
 * folder per process) and the shapes are timed round by round, each shape over every size back
 * to back, the order of the sizes rotating from round to round (as bench/run.ts does for
 * redirects). Requests go one at a time over loopback, as bench/stats.ts's do.
 *
 * Per shape and size: p95 over all rounds; per pair of sizes: the ratio of those p95s, and the
 * median of the rounds' own ratios. Written to bench/results/latest.json as `stats_growth`.
 * `--rounds N` (default 6), `--seconds S` per shape, size and round (default 1.5).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Serving } from "./stats.ts";
import { median } from "./ingest.ts";
import { quantile, statsShapes, statsUrl, TARGET_SHAPES } from "./stats-shapes.ts";

const { values: opts, positionals: dirs } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: "string", default: "6" }, seconds: { type: "string", default: "1.5" } },
});
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
if (dirs.length < 2) throw new Error("usage: npm run bench:growth -- DIR DIR … (folders kept by npm run bench:stats -- --clicks N --keep)");
if (!(ROUNDS >= 1) || !(SECONDS > 0)) throw new Error("--rounds: at least 1; --seconds: more than 0");

interface Size {
  dir: string;
  proc: ChildProcess;
  serving: Serving["serving"];
}
const sizes: Size[] = [];
const stopAll = () => {
  for (const s of sizes) if (s.proc.connected) s.proc.send("stop");
};
process.once("SIGINT", () => (stopAll(), process.exit(130)));

try {
  // One at a time: each checks its seed (exact totals) and waits for its merges first.
  for (const dir of dirs) {
    const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("stats.ts", import.meta.url)), "--reuse", dir, "--serve"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const serving = await new Promise<Serving["serving"]>((resolve, reject) => {
      proc.on("message", (m: Serving) => m?.serving && resolve(m.serving));
      proc.once("exit", (code) => reject(new Error(`bench/stats.ts --reuse ${dir} --serve exited with ${code}`)));
    });
    sizes.push({ dir, proc, serving });
  }
  sizes.sort((a, b) => a.serving.clicks - b.serving.clicks);
  const label = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);
  console.log(`\ngrowth: ${sizes.map((s) => label(s.serving.clicks)).join(", ")} clicks open at once; ${ROUNDS} rounds of ~${SECONDS} s per shape and size`);

  const get = async (s: Size, url: string) => {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${s.serving.key}` } });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${label(s.serving.clicks)} ${url}: HTTP ${res.status} ${body}`);
    return performance.now() - t0;
  };
  const names = statsShapes(0).map((sh) => sh.name);
  /** Latencies (ms) per shape, per size (index in `sizes`), per round. */
  const times = new Map(names.map((n) => [n, sizes.map(() => Array.from({ length: ROUNDS }, () => [] as number[]))]));
  /** Requests per shape and size in a round: what fits in SECONDS at the warm latency (first round's warm-up). */
  const amounts = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = sizes.map((_, i) => (i + round) % sizes.length);
    for (const name of names)
      for (const i of order) {
        const s = sizes[i]!;
        const url = statsUrl(s.serving.url, statsShapes(s.serving.end).find((sh) => sh.name === name)!.query);
        const warm = Math.min(await get(s, url), await get(s, url));
        const key = `${name} ${i}`;
        if (!amounts.has(key)) amounts.set(key, Math.max(5, Math.min(500, Math.floor((SECONDS * 1000) / warm))));
        const out = times.get(name)![i]![round]!;
        for (let k = 0; k < amounts.get(key)!; k++) out.push(await get(s, url));
      }
    console.log(`  round ${round + 1} of ${ROUNDS} done`);
  }

  const p95 = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.95);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const pairs = sizes.slice(1).map((_, j) => [j, j + 1] as const);
  const pairName = ([a, b]: readonly [number, number]) => `${label(sizes[b]!.serving.clicks)}/${label(sizes[a]!.serving.clicks)}`;
  const result: Record<string, Record<string, number>> = {};
  console.log(`\np95 ms per shape (all rounds), and growth: ratio of the p95s (median of the rounds' own ratios)`);
  console.log(`${"shape".padEnd(26)} ${sizes.map((s) => label(s.serving.clicks).padStart(8)).join(" ")}   ${pairs.map((p) => pairName(p).padStart(16)).join(" ")}`);
  for (const name of names) {
    const bySize = times.get(name)!;
    const p = bySize.map((rounds) => p95(rounds.flat()));
    const row: Record<string, number> = Object.fromEntries(sizes.map((s, i) => [String(s.serving.clicks), r1(p[i]!)]));
    const cells = pairs.map(([a, b]) => {
      const ratio = p[b]! / p[a]!;
      const perRound = median(bySize[b]!.map((t, round) => p95(t) / p95(bySize[a]![round]!)));
      row[pairName([a, b])] = r2(ratio);
      row[`${pairName([a, b])}_rounds_median`] = r2(perRound);
      return `${ratio.toFixed(2)} (${perRound.toFixed(2)})`.padStart(16);
    });
    result[name] = row;
    console.log(`${name.padEnd(26)} ${p.map((x) => x.toFixed(1).padStart(8)).join(" ")}   ${cells.join(" ")}${TARGET_SHAPES.includes(name) ? "" : "   (not a target shape)"}`);
  }

  const file = new URL("results/latest.json", import.meta.url);
  const prev = JSON.parse(await readFile(file, "utf8").catch(() => "{}")) as Record<string, unknown>;
  const growth = { rounds: ROUNDS, seconds_per_round: SECONDS, sizes: sizes.map((s) => s.serving.clicks), p95_ms: result };
  await writeFile(file, JSON.stringify({ ...prev, stats_growth: growth }, null, 2) + "\n");
  console.log("\nmerged into: bench/results/latest.json (stats_growth)");
} finally {
  stopAll();
  await Promise.all(sizes.map((s) => new Promise((r) => (s.proc.exitCode !== null ? r(null) : s.proc.once("exit", r)))));
}
