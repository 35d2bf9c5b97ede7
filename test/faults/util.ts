/** Small helpers the fault scenarios share. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A uniformly random number in [lo, hi). */
export const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** The p-th percentile (0–100, nearest rank) of some numbers. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
