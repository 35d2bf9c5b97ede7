import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { workerBuildOptions } from "../edge/miniflare.ts";

/**
 * The worker's size budget: minified as `wrangler deploy` bundles it, under 150 KiB, and without
 * zod classic (~440 KiB with its locales): the edge validates with zod/mini (shared/edge-link.ts)
 * and imports click constants from shared/constants.ts, never shared/event.ts's values.
 */
describe("edge worker bundle", () => {
  it("stays under 150 KiB minified and pulls in neither zod classic nor zod's other locales", async () => {
    const out = await build({ ...workerBuildOptions(), minify: true, write: false, metafile: true, logLevel: "silent" });
    // What ends up in the bundle (the metafile's inputs also list modules parsed, then dropped).
    const used = Object.values(out.metafile.outputs)[0]!.inputs;
    const inputs = Object.keys(used).filter((f) => used[f]!.bytesInOutput > 0);
    expect(inputs.filter((f) => /node_modules\/zod\/v4\/classic\//.test(f))).toEqual([]);
    expect(inputs.filter((f) => /node_modules\/zod\/v4\/locales\/(?!en\.js$)/.test(f))).toEqual([]);
    expect(inputs.filter((f) => /(^|\/)shared\/event\.ts$/.test(f))).toEqual([]);
    expect(out.outputFiles[0]!.contents.byteLength / 1024).toBeLessThan(150);
  });
});
