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

/** Draws (or redraws) a chart of x = unix seconds into `box`; returns the uPlot instance. */
export function timeChart(box: HTMLElement, xs: number[], ys: (number | null)[][], specs: SeriesSpec[], opts: { height?: number; yRange?: [number, number]; xRange?: [number, number] } = {}): uPlot {
  box.replaceChildren();
  const width = Math.max(300, box.clientWidth || 640);
  // The x range is the query's, so one bucket does not stretch over years.
  const scales: uPlot.Scales = { x: opts.xRange ? { time: true, range: opts.xRange } : { time: true } };
  for (const s of specs) scales[s.scale ?? "y"] = s.scale === "ratio" || opts.yRange ? { range: s.scale === "ratio" ? [0, 1] : opts.yRange } : { range: (_u, _min, max) => [0, Math.max(1, max)] };
  return new uPlot(
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
          .map((sc, i) => ({ scale: sc, side: i === 0 ? 3 : 1, grid: { show: i === 0 }, values: sc === "ratio" ? (_u: uPlot, vals: number[]) => vals.map((v) => `${Math.round(v * 100)}%`) : undefined })),
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
}
