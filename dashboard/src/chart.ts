/** uPlot wrappers: a time series (lines or bars) sized to its container. */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface SeriesSpec {
  label: string;
  color: string;
  bars?: boolean;
  scale?: string;
  fmt?: (v: number | null) => string;
}

const bars = uPlot.paths.bars!({ size: [0.7, 40] });
/** Count axes step in whole numbers (an empty chart reads 0 and 1, never 0.2, 0.4, …). */
const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];

/** One resize observer per chart box: a phone turned sideways redraws at the new width. */
const observers = new WeakMap<HTMLElement, ResizeObserver>();

/** Draws (or redraws) a chart of x = unix seconds into `box`; returns the uPlot instance. */
export function timeChart(box: HTMLElement, xs: number[], ys: (number | null)[][], specs: SeriesSpec[], opts: { height?: number; yRange?: [number, number]; xRange?: [number, number]; empty?: string } = {}): uPlot {
  box.replaceChildren();
  const width = Math.max(200, box.clientWidth || 640);
  // The x range is the query's, so one bucket does not stretch over years.
  const scales: uPlot.Scales = { x: opts.xRange ? { time: true, range: opts.xRange } : { time: true } };
  for (const s of specs) scales[s.scale ?? "y"] = s.scale === "ratio" || opts.yRange ? { range: s.scale === "ratio" ? [0, 1] : opts.yRange } : { range: (_u, _min, max) => [0, Math.max(1, max)] };
  const plot = new uPlot(
    {
      width,
      height: opts.height ?? 220,
      scales,
      legend: { live: true },
      axes: [
        {},
        ...specs
          .map((s) => s.scale ?? "y")
          .filter((sc, i, a) => a.indexOf(sc) === i)
          .map((sc, i) => ({ scale: sc, side: i === 0 ? 3 : 1, grid: { show: i === 0 }, incrs: sc === "ratio" ? undefined : COUNT_INCRS, values: sc === "ratio" ? (_u: uPlot, vals: number[]) => vals.map((v) => `${Math.round(v * 100)}%`) : undefined })),
      ],
      series: [
        {},
        ...specs.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.bars ? s.color + "99" : s.color + "22",
          scale: s.scale ?? "y",
          width: s.bars ? 0 : 2,
          paths: s.bars ? bars : undefined,
          points: { show: xs.length < 3 },
          value: s.fmt ? (_u: uPlot, v: number | null) => s.fmt!(v) : undefined,
        })),
      ],
    },
    [xs, ...ys] as uPlot.AlignedData,
    box,
  );
  observers.get(box)?.disconnect();
  if (typeof ResizeObserver === "function") {
    let last = width;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, box.clientWidth);
      if (Math.abs(w - last) > 4) plot.setSize({ width: (last = w), height: opts.height ?? 220 });
    });
    ro.observe(box);
    observers.set(box, ro);
  }
  // An empty range says so over the (flat) chart.
  if (opts.empty && !ys.some((y) => y.some((v) => v))) {
    const note = document.createElement("p");
    note.className = "chart-empty muted";
    note.textContent = opts.empty;
    box.append(note);
  }
  return plot;
}
