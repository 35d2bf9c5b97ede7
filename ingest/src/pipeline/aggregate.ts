/**
 * Kinesis record aggregation: several clicks in one record (what the KPL does), so a busy
 * stream carries ~100 clicks a record instead of one.
 * - Kinesis limits a shard to 1,000 records/s (and 1 MB/s), and bills PUT payload units of
 *   25 KB: one click a record made a peak cost one unit and one record per click, and one
 *   viral link (its clicks all on one shard, partition key = code) hit the records/s cap.
 * - Every record costs the forwarder, the stream and the loader a fixed amount of work (SDK
 *   encoding, base64, sequence numbers); kinesalite spent ~120 µs of CPU per click here.
 *
 * Format: 4 magic bytes, then for each click its length (uint32, big-endian) and its bytes (the
 * outbox row's data, as it was). Length-prefixed rather than a JSON array, so each click is
 * parsed on its own: a bad one (a replayed dead letter, say) is dead-lettered alone and the
 * others still load. No JSON text starts with the magic (0xF3 is not a JSON token), so a
 * record without it is a single click (KINESIS_AGGREGATE_BYTES=0, or a record written before aggregation).
 */
export const AGGREGATE_MAGIC = Buffer.from([0xf3, 0x4c, 0x46, 0x31]); // 0xF3 "LF1"
const FRAME = 4;

export function aggregate(parts: Uint8Array[]): Buffer {
  const size = parts.reduce((n, p) => n + FRAME + p.length, AGGREGATE_MAGIC.length);
  const out = Buffer.allocUnsafe(size);
  let at = AGGREGATE_MAGIC.copy(out, 0);
  for (const p of parts) {
    at = out.writeUInt32BE(p.length, at);
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The clicks of an aggregated record, or null for a record that is not one (a single click,
 * or bytes that only start like an aggregate: those are one bad record, handled as a whole).
 */
export function deaggregate(payload: Uint8Array): Buffer[] | null {
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (buf.length < AGGREGATE_MAGIC.length || !AGGREGATE_MAGIC.equals(buf.subarray(0, AGGREGATE_MAGIC.length))) return null;
  const parts: Buffer[] = [];
  let at = AGGREGATE_MAGIC.length;
  while (at < buf.length) {
    if (at + FRAME > buf.length) return null;
    const len = buf.readUInt32BE(at);
    at += FRAME;
    if (at + len > buf.length) return null;
    parts.push(buf.subarray(at, at + len));
    at += len;
  }
  return parts;
}

/**
 * Packs rows, in order, into groups whose aggregate stays within `maxBytes` (a row larger than
 * that goes alone). `maxBytes` 0: one row a group, i.e. no aggregation.
 */
export function packRecords<T extends { data: Uint8Array }>(rows: T[], maxBytes: number): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let size = AGGREGATE_MAGIC.length;
  for (const r of rows) {
    const n = FRAME + r.data.length;
    if (group.length && (maxBytes <= 0 || size + n > maxBytes)) {
      groups.push(group);
      group = [];
      size = AGGREGATE_MAGIC.length;
    }
    group.push(r);
    size += n;
  }
  if (group.length) groups.push(group);
  return groups;
}
