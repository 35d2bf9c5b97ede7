import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { AggregatedRecord, type AggregatedRecordMessage } from "aws-kinesis-agg/lib/common.js";

/**
 * Kinesis record aggregation: several clicks in one record, so a busy stream carries ~60 clicks a
 * record instead of one.
 * - Kinesis limits a shard to 1,000 records/s (and 1 MB/s), and bills PUT payload units of
 *   25 KB: one click a record made a peak cost one unit and one record per click, and one
 *   viral link (its clicks all on one shard, partition key = code) hit the records/s cap.
 * - Every record costs the forwarder, the stream and the loader a fixed amount of work (SDK
 *   encoding, base64, sequence numbers); kinesalite spent ~120 µs of CPU per click here.
 *
 * Format: the KPL's aggregated record (magic F3 89 9A C2, a protobuf AggregatedRecord, the MD5 of
 * the protobuf), written and read with aws-kinesis-agg's protobuf message (the tests hold it
 * against the library's own deaggregateSync), so Firehose, Lambda (aws-kinesis-agg) and KCL
 * consumers deaggregate it. Each
 * click is a user record of its own, under its outbox partition key (its code), and is parsed on
 * its own: a bad one (a replayed dead letter, say) is dead-lettered alone and the others still
 * load. No JSON text starts with 0xF3, so a record
 * without a magic is a single click (KINESIS_AGGREGATE_BYTES=0, or a record written before
 * aggregation).
 *
 * Compressed (KINESIS_COMPRESSION=gzip; off by default, since Firehose deaggregates plain KPL
 * records only): an aggregate is put gzipped whole (level 1), so a consumer gunzips a record
 * that starts with 1F 8B, then deaggregates the KPL record inside. Clicks of one batch share
 * most of their text (field names, domains, user agents, places): ~5× fewer bytes (893 → 166 a
 * click, bench/capacity.ts's clicks) for the SDK to hash, base64 and send, for Kinesis to carry
 * and bill (25 kB PUT payload units, 1 MB/s a shard) and for the loader to read, for ~4 µs of
 * CPU a click to compress and ~1 to unpack. Records of one click stay as they are.
 */
export const KPL_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);
/** The magic plus the MD5 trailer, around the protobuf. */
const KPL_FRAME = KPL_MAGIC.length + 16;
/** gzip's magic and its one method (deflate). */
export const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
/** Most bytes a compressed record may unpack to: an aggregate is at most KINESIS_AGGREGATE_BYTES (≤ 1 MB); a bomb stops here. */
const MAX_UNZIPPED = 4 << 20;
/**
 * Linkflow's own format before the KPL's (4 magic bytes, then each click's length, uint32
 * big-endian, and bytes): still read, for records written before and still in a stream.
 */
export const LEGACY_MAGIC = Buffer.from([0xf3, 0x4c, 0x46, 0x31]); // 0xF3 "LF1"

/** An outbox row as the forwarder packs it. */
export interface UserRow {
  id: string;
  partition_key: string;
  data: Uint8Array;
}

/** One Kinesis record to put, and the outbox rows it holds (deleted once Kinesis accepts it). */
export interface Packed<T extends UserRow> {
  rows: T[];
  PartitionKey: string;
  ExplicitHashKey?: string;
  Data: Uint8Array;
}

/** The hash key Kinesis routes a partition key on: the MD5 of its UTF-8, as a 128-bit integer. */
export function hashKeyOf(partitionKey: string): string {
  return BigInt(`0x${createHash("md5").update(partitionKey, "utf8").digest("hex")}`).toString();
}

/**
 * Packs rows, in order, into Kinesis records of at most `maxBytes` (a row larger than that
 * goes alone). A record of one row is that row's bytes, under its partition key, as always.
 * An aggregate goes under its first outbox id (`outbox-<id>`), so aggregates spread over the
 * shards (one viral link is not capped at one shard's 1,000 records/s); its user records keep
 * their own partition keys, and all carry the aggregate's hash key as their explicit hash key:
 * the KCL drops every user record of an aggregate when one of them hashes outside the shard the
 * aggregate is on. `maxBytes` 0: one row a record, i.e. no aggregation.
 *
 * Not the library's RecordAggregator: its build() lists the partition key table with
 * Object.keys, which puts integer-like keys ("2024") first, so such a code's clicks came back
 * under another click's key. The tables here keep insertion order (a Map).
 */
export function packRecords<T extends UserRow>(rows: T[], maxBytes: number, gzip = false): Packed<T>[] {
  const out: Packed<T>[] = [];
  let group: T[] = [];
  let keys = new Map<string, number>();
  let hashKey = "";
  /** The record's bytes so far: magic, protobuf, MD5. */
  let size = 0;
  /** What a row adds to the protobuf: its user record, and its key in the table if new. */
  const added = (r: T) => {
    const index = keys.get(r.partition_key);
    const inner = 1 + varintSize(index ?? keys.size) + 2 + fieldSize(r.data.length); // key index, hash key index 0, data
    return fieldSize(inner) + (index === undefined ? fieldSize(Buffer.byteLength(r.partition_key)) : 0);
  };
  const close = () => {
    const first = group[0]!;
    if (group.length === 1) out.push({ rows: group, PartitionKey: first.partition_key, Data: first.data });
    else {
      const body = AggregatedRecord.encode({
        partition_key_table: [...keys.keys()],
        explicit_hash_key_table: [hashKey],
        records: group.map((r) => ({ partition_key_index: keys.get(r.partition_key)!, explicit_hash_key_index: 0, data: r.data })),
      }).finish();
      const data = Buffer.concat([KPL_MAGIC, body, createHash("md5").update(body).digest()]);
      out.push({ rows: group, PartitionKey: `outbox-${first.id}`, ExplicitHashKey: hashKey, Data: gzip ? gzipSync(data, { level: 1 }) : data });
    }
    group = [];
  };
  for (const r of rows) {
    if (maxBytes <= 0) {
      out.push({ rows: [r], PartitionKey: r.partition_key, Data: r.data });
      continue;
    }
    if (group.length && size + added(r) > maxBytes) close();
    if (!group.length) {
      hashKey = hashKeyOf(`outbox-${r.id}`);
      keys = new Map();
      size = KPL_FRAME + fieldSize(hashKey.length);
    }
    size += added(r);
    if (!keys.has(r.partition_key)) keys.set(r.partition_key, keys.size);
    group.push(r);
  }
  if (group.length) close();
  return out;
}

/** Protobuf sizes: a varint, and a length-delimited field (tag, length, bytes). */
const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
const fieldSize = (len: number) => 1 + varintSize(len) + len;

/** A click read from a Kinesis record, and the partition key it was written under. */
export interface UserRecord {
  partitionKey: string;
  data: Buffer;
}

/**
 * What a Kinesis record holds: its clicks (`aggregated`: each addressed by its index),
 * or, for bytes that start like an aggregate and are not one (a bad MD5, a cut record), why it
 * is one bad record, handled as a whole.
 */
export type Unpacked = { aggregated: boolean; clicks: UserRecord[] } | { error: string };

export function unpackRecord(payload: Buffer, partitionKey: string): Unpacked {
  if (startsWith(payload, GZIP_MAGIC)) {
    let inner: Buffer;
    try {
      inner = gunzipSync(payload, { maxOutputLength: MAX_UNZIPPED });
    } catch (err) {
      return { error: `invalid gzip record: ${String(err)}` };
    }
    // What the forwarder gzips is a KPL aggregate, nothing else (and never gzip again).
    if (!startsWith(inner, KPL_MAGIC)) return { error: "invalid gzip record: it holds no KPL aggregated record" };
    return unpackRecord(inner, partitionKey);
  }
  if (startsWith(payload, KPL_MAGIC)) {
    if (payload.length < KPL_FRAME) return { error: "invalid KPL aggregated record: shorter than its magic and checksum" };
    // As the library's deaggregateSync reads it (checksums on: a corrupt record is refused whole),
    // without its detour through base64: it hands each click over as a base64 string, encoded
    // there and decoded here (~1 µs of ~2.6 a click in a microbenchmark). The clicks are views
    // of `payload`, which is kept for dead letters anyway.
    const body = payload.subarray(KPL_MAGIC.length, payload.length - 16);
    if (!createHash("md5").update(body).digest().equals(payload.subarray(payload.length - 16)))
      return { error: "invalid KPL aggregated record: Error: Invalid record checksum" };
    let message: AggregatedRecordMessage;
    try {
      message = AggregatedRecord.decode(body);
    } catch (err) {
      return { error: `invalid KPL aggregated record: ${String(err)}` };
    }
    const keys = message.partition_key_table;
    return {
      aggregated: true,
      clicks: message.records.map((r) => ({
        partitionKey: keys[r.partition_key_index] ?? partitionKey,
        data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
      })),
    };
  }
  if (startsWith(payload, LEGACY_MAGIC)) {
    const parts = legacyParts(payload);
    if (!parts) return { error: "invalid aggregated record (F3 4C 46 31): a length runs past its end" };
    return { aggregated: true, clicks: parts.map((data) => ({ partitionKey, data })) };
  }
  return { aggregated: false, clicks: [{ partitionKey, data: payload }] };
}

/**
 * The clicks of an aggregated record (either format), or null for a record that is not one (a
 * single click, or a bad aggregate).
 */
export function deaggregate(payload: Uint8Array): Buffer[] | null {
  const u = unpackRecord(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), "");
  return "error" in u || !u.aggregated ? null : u.clicks.map((c) => c.data);
}

function startsWith(buf: Buffer, magic: Buffer): boolean {
  if (buf.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (buf[i] !== magic[i]) return false;
  return true;
}

function legacyParts(buf: Buffer): Buffer[] | null {
  const parts: Buffer[] = [];
  let at = LEGACY_MAGIC.length;
  while (at < buf.length) {
    if (at + 4 > buf.length) return null;
    const len = buf.readUInt32BE(at);
    at += 4;
    if (at + len > buf.length) return null;
    parts.push(buf.subarray(at, at + len));
    at += len;
  }
  return parts;
}
