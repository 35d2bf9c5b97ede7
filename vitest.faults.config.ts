import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: the fault suite (SIGKILLed ingest, a 30-second Kinesis outage) with real
 * processes on loopback. Scenarios share the machine's cores and time budgets, so files run one
 * after another.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
