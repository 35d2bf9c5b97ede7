import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: the fault suite (docs/FAULTS.md) with real processes on loopback.
 * Scenarios share the machine's cores and time budgets, so files run one after another; the
 * global setup collects each scenario's row and prints the combined table at the end.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    globalSetup: ["test/faults/report-setup.ts"],
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
