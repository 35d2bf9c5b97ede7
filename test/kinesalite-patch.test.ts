import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

/**
 * patches/kinesalite+3.3.3.patch (patch-package, postinstall) replaces kinesalite's bignumber.js sequence-number
 * and hash-key arithmetic with BigInt. Kinesis sequence numbers are what the loader checkpoints
 * and resumes from, so the replacements must give exactly what the originals (kept as
 * `_bigNumber`) give, for the sequence numbers kinesalite makes and for hostile ones.
 */
const require = createRequire(import.meta.url);
const db = require("kinesalite/db/index.js") as {
  parseSequence: (s: unknown) => unknown;
  stringifySequence: (o: object) => string;
  partitionKeyToHashKey: (k: string) => { comparedTo: (x: string | number) => number; toFixed: () => string };
  _bigNumber?: { parseSequence: (s: unknown) => unknown; stringifySequence: (o: object) => string; partitionKeyToHashKey: (k: string) => { comparedTo: (x: string | number) => number; toFixed: () => string } };
};
const slow = db._bigNumber!;
const outcome = (f: () => unknown) => {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: String(e) };
  }
};

describe("kinesalite BigInt patch", () => {
  it("is installed (npm ci applies patches/kinesalite+3.3.3.patch)", () => {
    expect(readFileSync(resolve(import.meta.dirname, "../node_modules/kinesalite/db/index.js"), "utf8")).toContain("linkflow: BigInt sequence numbers");
    expect(slow).toBeDefined();
    expect(db.parseSequence).not.toBe(slow.parseSequence);
  });

  it("formats and parses sequence numbers exactly as bignumber.js did", () => {
    const seqObj = fc.record({
      shardCreateTime: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => s * 1000),
      shardIx: fc.integer({ min: 0, max: 499 }),
      seqIx: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String)),
      seqTime: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => s * 1000),
    });
    fc.assert(
      fc.property(seqObj, (o) => {
        const s = db.stringifySequence(o);
        expect(s).toBe(slow.stringifySequence(o));
        expect(db.parseSequence(s)).toEqual(slow.parseSequence(s));
      }),
      { numRuns: 3000 },
    );
  });

  it("answers unusual and hostile input like the original (values or the same error)", () => {
    const inputs: unknown[] = ["0", "1", "", "abc", "-5", "1e60", "12.5", " 49590338271490256608559692538361571095921575989136588898", "4".repeat(80), String(2n ** 124n - 1n), String(2n ** 185n + 1n), 42, null];
    fc.assert(fc.property(fc.stringMatching(/^[0-9]{1,70}$/), (s) => void inputs.push(s)), { numRuns: 500 });
    for (const s of inputs) expect(outcome(() => db.parseSequence(s)), String(s)).toEqual(outcome(() => slow.parseSequence(s)));
    for (const o of [{ version: 1, shardCreateTime: 1000, shardIx: 3, seqIx: 2 }, { version: 0, shardCreateTime: 1000, shardIx: 3 }, { shardCreateTime: 5000, seqIx: 1.5 }, { shardCreateTime: 5000, seqIx: "x" }, { shardCreateTime: 5000, shardIx: -1 }])
      expect(outcome(() => db.stringifySequence(o))).toEqual(outcome(() => slow.stringifySequence(o)));
  });

  it("maps partition keys to the same hash keys and shard ranges", () => {
    const bounds = ["0", "170141183460469231731687303715884105727", "170141183460469231731687303715884105728", "340282366920938463463374607431768211455"];
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 256 }), (k) => {
        const [a, b] = [db.partitionKeyToHashKey(k), slow.partitionKeyToHashKey(k)];
        expect(a.toFixed()).toBe(b.toFixed());
        for (const x of [...bounds, 0, b.toFixed()]) expect(a.comparedTo(x)).toBe(b.comparedTo(x));
      }),
      { numRuns: 3000 },
    );
  });
});
