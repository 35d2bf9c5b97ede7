import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { deaggregateSync, type UserRecordV3 } from "aws-kinesis-agg";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deaggregate, GZIP_MAGIC, hashKeyOf, KPL_MAGIC, LEGACY_MAGIC, packRecords, unpackRecord, type UserRow } from "./aggregate.ts";

/** What any AWS consumer does with a record: aws-kinesis-agg's own deaggregation, checksums on. */
function libraryDeaggregate(data: Uint8Array) {
  let out: { err: Error | null | undefined; records: UserRecordV3[] } | undefined;
  deaggregateSync({ Data: data }, true, (err: Error | null | undefined, records?: UserRecordV3[]) => (out = { err, records: records ?? [] }));
  return out!;
}

/** A record in Linkflow's format before the KPL's (still in streams written before). */
const legacyAggregate = (parts: Uint8Array[]) =>
  Buffer.concat([LEGACY_MAGIC, ...parts.flatMap((p) => [Buffer.from([p.length >>> 24, p.length >>> 16, p.length >>> 8, p.length].map((b) => b & 0xff)), p])]);

const codeArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);
// Codes, and any other key a replayed dead letter may carry (multi-byte UTF-8 included).
const keyArb = fc.oneof(codeArb, fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" }));
const rowsArb = fc.array(fc.record({ partition_key: keyArb, data: fc.uint8Array({ minLength: 1, maxLength: 900 }) }), { maxLength: 80 });
const withIds = (rows: { partition_key: string; data: Uint8Array }[]): UserRow[] => rows.map((r, i) => ({ ...r, id: String(1000 + i) }));

describe("KPL record aggregation", () => {
  it("packs rows into KPL records that aws-kinesis-agg reads back into the same clicks and partition keys", () => {
    fc.assert(
      fc.property(rowsArb, fc.integer({ min: 200, max: 20_000 }), (input, maxBytes) => {
        const rows = withIds(input);
        const packed = packRecords(rows, maxBytes);
        // Every row once, in order.
        expect(packed.flatMap((p) => p.rows)).toEqual(rows);
        for (const p of packed) {
          if (p.rows.length === 1) {
            // A record of one click: its bytes as they are (plain JSON), under its code.
            expect(p.PartitionKey).toBe(p.rows[0]!.partition_key);
            expect(p.ExplicitHashKey).toBeUndefined();
            expect(p.Data).toBe(p.rows[0]!.data);
            continue;
          }
          expect(p.Data.length).toBeLessThanOrEqual(maxBytes);
          expect(Buffer.from(p.Data.subarray(0, 4))).toEqual(KPL_MAGIC);
          // Routed on its first outbox id (aggregates spread over the shards).
          expect(p.PartitionKey).toBe(`outbox-${p.rows[0]!.id}`);
          expect(p.ExplicitHashKey).toBe(hashKeyOf(p.PartitionKey));
          const { err, records } = libraryDeaggregate(p.Data);
          expect(err).toBeFalsy();
          expect(records.map((r) => r.PartitionKey)).toEqual(p.rows.map((r) => r.partition_key));
          expect(records.map((r) => [...Buffer.from(r.Data, "base64")])).toEqual(p.rows.map((r) => [...r.data]));
          // Every user record hashes to the aggregate's shard (the KCL drops the aggregate otherwise).
          expect(new Set(records.map((r) => r.ExplicitPartitionKey))).toEqual(new Set([p.ExplicitHashKey]));
          // And our reader agrees with the library.
          const ours = unpackRecord(Buffer.from(p.Data), p.PartitionKey);
          expect(ours).toEqual({ aggregated: true, clicks: p.rows.map((r) => ({ partitionKey: r.partition_key, data: Buffer.from(r.data) })) });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("counts a record's bytes exactly: one that fits in L bytes is packed whole at L, split at L - 1", () => {
    fc.assert(
      fc.property(rowsArb.filter((rows) => rows.length > 1), (input) => {
        const rows = withIds(input);
        const [whole] = packRecords(rows, 1_000_000);
        const L = whole!.Data.length;
        expect(packRecords(rows, L).map((p) => p.rows.length)).toEqual([rows.length]);
        expect(packRecords(rows, L - 1).length).toBeGreaterThan(1);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps each click under its own code when codes look like numbers (the library's RecordAggregator does not)", () => {
    const rows = withIds(["abc", "2024", "abc", "7"].map((code, i) => ({ partition_key: code, data: Buffer.from(`click ${i}`) })));
    const [p] = packRecords(rows, 10_000);
    const { records } = libraryDeaggregate(p!.Data);
    expect(records.map((r) => [r.PartitionKey, Buffer.from(r.Data, "base64").toString()])).toEqual(rows.map((r) => [r.partition_key, r.data.toString()]));
  });

  it("fills records up to the byte limit; a larger row goes alone; 0 packs nothing", () => {
    const row = (n: number, id: number) => ({ id: String(id), partition_key: `code${id % 3}`, data: Buffer.alloc(n, 0x61) });
    const rows = [row(40, 1), row(40, 2), row(40, 3), row(500, 4), row(10, 5)];
    const packed = packRecords(rows, 200);
    expect(packed.map((p) => p.rows.map((r) => Number(r.id)))).toEqual([[1, 2], [3], [4], [5]]);
    expect(packed[0]!.Data.length).toBeLessThanOrEqual(200);
    // A third row would not fit: the limit is used, not left half empty.
    expect(packed[0]!.Data.length + 40).toBeGreaterThan(200);
    expect(packRecords(rows, 0).map((p) => [p.rows.length, p.PartitionKey])).toEqual(rows.map((r) => [1, r.partition_key]));
    expect(packRecords([], 100)).toEqual([]);
  });

  it("routes an aggregate where Kinesis routes its partition key (the MD5 as a 128-bit integer)", () => {
    expect(hashKeyOf("")).toBe(BigInt("0xd41d8cd98f00b204e9800998ecf8427e").toString());
    const key = "outbox-12345";
    expect(BigInt(hashKeyOf(key))).toBe(BigInt(`0x${createHash("md5").update(key).digest("hex")}`));
  });

  it("gzips each aggregate whole when asked: gunzipped, it is the same KPL record; single clicks stay plain", () => {
    fc.assert(
      fc.property(rowsArb, fc.integer({ min: 200, max: 20_000 }), (input, maxBytes) => {
        const rows = withIds(input);
        const plain = packRecords(rows, maxBytes);
        const gzipped = packRecords(rows, maxBytes, true);
        // The same records (rows, keys, hash keys); only an aggregate's bytes differ.
        expect(gzipped.map(({ Data: _, ...r }) => r)).toEqual(plain.map(({ Data: _, ...r }) => r));
        for (const [i, p] of gzipped.entries()) {
          if (p.rows.length === 1) {
            expect(p.Data).toBe(p.rows[0]!.data);
            continue;
          }
          expect(Buffer.from(p.Data.subarray(0, 3))).toEqual(GZIP_MAGIC);
          // A consumer's recipe: gunzip, then any KPL deaggregation.
          expect(gunzipSync(p.Data)).toEqual(Buffer.from(plain[i]!.Data));
          expect(libraryDeaggregate(gunzipSync(p.Data)).records.map((r) => [...Buffer.from(r.Data, "base64")])).toEqual(p.rows.map((r) => [...r.data]));
          expect(unpackRecord(Buffer.from(p.Data), p.PartitionKey)).toEqual(unpackRecord(Buffer.from(plain[i]!.Data), p.PartitionKey));
          expect(deaggregate(p.Data)?.map((b) => [...b])).toEqual(p.rows.map((r) => [...r.data]));
        }
      }),
      { numRuns: 200 },
    );
    // Clicks of a batch share most of their text: a typical aggregate is several times smaller.
    const click = (i: number) =>
      Buffer.from(JSON.stringify({ click_id: createHash("md5").update(String(i)).digest("hex"), link_id: i % 7, code: `c${i % 7}`, user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)", original_url: `https://example.com/p/${i % 7}` }));
    const rows = withIds(Array.from({ length: 60 }, (_, i) => ({ partition_key: `c${i % 7}`, data: click(i) })));
    const [plainOne] = packRecords(rows, 50_000);
    const [gzOne] = packRecords(rows, 50_000, true);
    expect(gzOne!.Data.length * 3).toBeLessThan(plainOne!.Data.length);
  });

  it("takes a bad gzip record (corrupt, cut short, not an aggregate inside, too large unpacked) for one bad record", () => {
    const rows = withIds([1, 2, 3].map((i) => ({ partition_key: `c${i}`, data: Buffer.from(JSON.stringify({ i })) })));
    const good = Buffer.from(packRecords(rows, 10_000, true)[0]!.Data);
    expect(unpackRecord(good, "k")).toHaveProperty("clicks");
    for (let cut = GZIP_MAGIC.length; cut < good.length; cut++) expect(unpackRecord(good.subarray(0, cut), "k")).toEqual({ error: expect.stringMatching(/^invalid gzip record/) });
    const flipped = Buffer.from(good);
    flipped[good.length >> 1]! ^= 0x40;
    expect(unpackRecord(flipped, "k")).toEqual({ error: expect.stringMatching(/^invalid gzip record/) });
    // A click or an old-format aggregate gzipped is not what the forwarder writes.
    expect(unpackRecord(gzipSync(Buffer.from("{\"a\":1}")), "k")).toEqual({ error: "invalid gzip record: it holds no KPL aggregated record" });
    expect(unpackRecord(gzipSync(legacyAggregate([Buffer.from("{}")])), "k")).toEqual({ error: "invalid gzip record: it holds no KPL aggregated record" });
    expect(unpackRecord(gzipSync(good), "k")).toEqual({ error: "invalid gzip record: it holds no KPL aggregated record" });
    // 64 MiB of zeros behind a KPL magic: ~64 KB gzipped, refused before it is all unpacked.
    const bomb = gzipSync(Buffer.concat([KPL_MAGIC, Buffer.alloc(64 << 20)]));
    expect(unpackRecord(bomb, "k")).toEqual({ error: expect.stringMatching(/^invalid gzip record: .*(larger|maxOutputLength|buffer)/i) });
    expect(deaggregate(bomb)).toBeNull();
  });

  it("still reads records in the format before the KPL's, and plain JSON", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 50 }), (parts) => {
        const u = unpackRecord(legacyAggregate(parts), "outbox-7");
        expect(u).toEqual({ aggregated: true, clicks: parts.map((p) => ({ partitionKey: "outbox-7", data: Buffer.from(p) })) });
        expect(deaggregate(legacyAggregate(parts))?.map((b) => [...b])).toEqual(parts.map((p) => [...p]));
      }),
      { numRuns: 300 },
    );
    const json = Buffer.from(JSON.stringify({ click_id: "x" }));
    expect(unpackRecord(json, "abc")).toEqual({ aggregated: false, clicks: [{ partitionKey: "abc", data: json }] });
    expect(deaggregate(json)).toBeNull();
    expect(deaggregate(Buffer.from("\u0000not json at all"))).toBeNull();
    expect(unpackRecord(Buffer.alloc(0), "abc")).toEqual({ aggregated: false, clicks: [{ partitionKey: "abc", data: Buffer.alloc(0) }] });
    // The same plain record is what the library hands a consumer as is.
    expect(libraryDeaggregate(json).records.map((r) => Buffer.from(r.Data as unknown as Uint8Array))).toEqual([json]);
  });

  it("takes a corrupt KPL record (bad MD5, cut short) for one bad record, never a part of it", () => {
    const rows = withIds([1, 2, 3].map((i) => ({ partition_key: `c${i}`, data: Buffer.from(JSON.stringify({ i })) })));
    const [p] = packRecords(rows, 10_000);
    const good = Buffer.from(p!.Data);
    for (const at of [4, good.length >> 1, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x01;
      const u = unpackRecord(bad, p!.PartitionKey);
      expect(u).toEqual({ error: expect.stringMatching(/invalid KPL aggregated record: .*checksum/i) });
      expect(deaggregate(bad)).toBeNull();
      expect(libraryDeaggregate(bad).err).toBeTruthy(); // as any AWS consumer would see it
    }
    for (let cut = KPL_MAGIC.length; cut < good.length; cut++) expect(unpackRecord(good.subarray(0, cut), "k")).toHaveProperty("error");
    // Its checksum right and its protobuf not (a wire type that does not exist): one bad record too.
    const garbage = Buffer.from([0x7f, 0x01, 0x02]);
    const wrongBody = Buffer.concat([KPL_MAGIC, garbage, createHash("md5").update(garbage).digest()]);
    expect(unpackRecord(wrongBody, "k")).toEqual({ error: expect.stringMatching(/invalid KPL aggregated record: .*wire type/i) });
    expect(libraryDeaggregate(wrongBody).err).toBeTruthy();
    // The old format: a cut on a frame boundary is a shorter valid aggregate; anywhere else it is one bad record.
    const whole = legacyAggregate([Buffer.from("{\"a\":1}"), Buffer.from("{\"b\":2}")]);
    for (let cut = LEGACY_MAGIC.length + 1; cut < whole.length; cut++) {
      const u = unpackRecord(whole.subarray(0, cut), "k");
      if (!("error" in u)) expect(u.clicks.map((c) => String(c.data))).toEqual(["{\"a\":1}"]);
    }
    const lying = Buffer.concat([LEGACY_MAGIC, Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from("{}")]);
    expect(unpackRecord(lying, "k")).toHaveProperty("error");
  });
});
