import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{shared,edge,ingest,test}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "test/faults/**"],
    pool: "forks",
    // Each file gets its own PostgreSQL schema and its own workerd, so files run side by side.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
