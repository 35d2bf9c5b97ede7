import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aggregate, AGGREGATE_MAGIC, deaggregate, packRecords } from "./aggregate.ts";

describe("record aggregation", () => {
  it("gives back every part, byte for byte and in order", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 50 }), (parts) => {
        const back = deaggregate(aggregate(parts));
        expect(back?.map((b) => [...b])).toEqual(parts.map((p) => [...p]));
      }),
      { numRuns: 500 },
    );
  });

  it("takes a plain record (a click's JSON, or anything else) for one click", () => {
    expect(deaggregate(Buffer.from(JSON.stringify({ click_id: "x" })))).toBeNull();
    expect(deaggregate(Buffer.from("\u0000not json at all"))).toBeNull();
    expect(deaggregate(new Uint8Array())).toBeNull();
  });

  it("takes bytes that only start like an aggregate for one (bad) record, never a part of them", () => {
    const whole = aggregate([Buffer.from("{\"a\":1}"), Buffer.from("{\"b\":2}")]);
    for (let cut = AGGREGATE_MAGIC.length + 1; cut < whole.length; cut++) {
      const parts = deaggregate(whole.subarray(0, cut));
      // A cut on a frame boundary is a shorter valid aggregate; anywhere else it is not one.
      if (parts) expect(parts.map(String)).toEqual(["{\"a\":1}"]);
    }
    const lying = Buffer.concat([AGGREGATE_MAGIC, Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from("{}")]);
    expect(deaggregate(lying)).toBeNull();
  });

  it("packs rows in order within the byte limit; a larger row goes alone; 0 packs nothing", () => {
    const row = (n: number, id: number) => ({ id, data: Buffer.alloc(n, 0x61) });
    const rows = [row(40, 1), row(40, 2), row(40, 3), row(500, 4), row(10, 5)];
    const groups = packRecords(rows, 100);
    expect(groups.map((g) => g.map((r) => r.id))).toEqual([[1, 2], [3], [4], [5]]);
    for (const g of groups) if (g.length > 1) expect(aggregate(g.map((r) => r.data)).length).toBeLessThanOrEqual(100);
    expect(packRecords(rows, 0).map((g) => g.length)).toEqual([1, 1, 1, 1, 1]);
    expect(packRecords([], 100)).toEqual([]);
  });
});
