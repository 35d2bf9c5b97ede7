// postinstall: makes kinesalite's sequence-number and hash-key arithmetic native BigInt.
// kinesalite (the local Kinesis of `npm start`, the tests and the bench) parses and formats every
// record's 56-digit sequence number and 128-bit hash key with bignumber.js base conversions; under
// the pipeline's load that was ~40 % of kinesalite's CPU and a fifth of the pipeline process's
// (`node --cpu-prof`, docs/BENCHMARKS.md), CPU that a real Kinesis never takes from us.
// The replacements compute the same strings (test/kinesalite-patch.test.ts compares them with
// the original functions, kept as `_bigNumber`, on random and boundary inputs) and hand anything
// unusual (non-decimal input, an error) to the original, so errors stay exactly as they were.
// Idempotent; a kinesalite whose code no longer matches is left alone with a warning.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const file = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "kinesalite", "db", "index.js");
const MARK = "linkflow: BigInt sequence numbers";
const EXPECTED = ["function parseSequence(seq) {", "function stringifySequence(obj) {", "function partitionKeyToHashKey(partitionKey) {", "exports.parseSequence = parseSequence"];

const PATCH = `
// ${MARK} (scripts/patch-kinesalite.mjs): same results as the bignumber.js versions above,
// which stay as the fallback for unusual input and errors (so errors are unchanged).
;(function () {
  var slow = { parseSequence: parseSequence, stringifySequence: stringifySequence, partitionKeyToHashKey: partitionKeyToHashKey }
  exports._bigNumber = slow
  var P124 = BigInt(2) ** BigInt(124), P124_NEXT = BigInt(2) ** BigInt(125) * BigInt(16)
  var P185 = BigInt(2) ** BigInt(185), P185_NEXT = BigInt(2) ** BigInt(185) * BigInt(3) / BigInt(2)
  var DECIMAL = /^\\d+$/, HEX = /^[0-9a-f]+$/

  function fastParse(seq) {
    if (typeof seq != 'string' || !DECIMAL.test(seq)) return slow.parseSequence(seq)
    var n = BigInt(seq)
    if (n < P124) n += P124
    var hex = n.toString(16), version = n < P124_NEXT ? 0 :
      (n > P185 && n < P185_NEXT) ? parseInt(hex.slice(hex.length - 1), 16) : null
    if (version == 2) {
      var seqIxHex = hex.slice(11, 27), shardIxHex = hex.slice(38, 46)
      if (parseInt(seqIxHex[0], 16) > 7) return slow.parseSequence(seq)
      if (parseInt(shardIxHex[0], 16) > 7) shardIxHex = '-' + shardIxHex
      var shardCreateSecs = parseInt(hex.slice(1, 10), 16)
      if (shardCreateSecs >= 16025175000) return slow.parseSequence(seq)
      return {
        shardCreateTime: shardCreateSecs * 1000,
        seqIx: BigInt('0x' + seqIxHex).toString(),
        byte1: hex.slice(27, 29),
        seqTime: parseInt(hex.slice(29, 38), 16) * 1000,
        shardIx: parseInt(shardIxHex, 16),
        version: version,
      }
    }
    // Versions 0 and 1 (older streams) and unknown ones: rare, left to the original.
    return slow.parseSequence(seq)
  }

  function fastStringify(obj) {
    if (!(obj.version == null || obj.version == 2)) return slow.stringifySequence(obj)
    var seqIx = obj.seqIx || 0
    if (!(typeof seqIx == 'number' ? Number.isSafeInteger(seqIx) && seqIx >= 0 : typeof seqIx == 'string' && DECIMAL.test(seqIx)))
      return slow.stringifySequence(obj)
    var hex = [
      '2',
      ('00000000' + Math.floor(obj.shardCreateTime / 1000).toString(16)).slice(-9),
      (obj.shardIx || 0).toString(16).slice(-1),
      ('0000000000000000' + BigInt(seqIx).toString(16)).slice(-16),
      obj.byte1 || '00',
      ('00000000' + Math.floor((obj.seqTime || obj.shardCreateTime) / 1000).toString(16)).slice(-9),
      shardIxToHex(obj.shardIx),
      '2',
    ].join('')
    if (!HEX.test(hex)) return slow.stringifySequence(obj)
    return BigInt('0x' + hex).toString()
  }

  // Only compared with the shards' decimal StartingHashKey/EndingHashKey (putRecord, putRecords).
  function HashKey(value) { this.value = value }
  HashKey.prototype.comparedTo = function (other) {
    var b = other instanceof HashKey ? other.value : BigInt(typeof other == 'number' ? other : String(other))
    return this.value < b ? -1 : this.value > b ? 1 : 0
  }
  HashKey.prototype.toFixed = function () { return this.value.toString() }
  HashKey.prototype.toString = function (base) { return this.value.toString(base || 10) }

  function fastHashKey(partitionKey) {
    return new HashKey(BigInt('0x' + crypto.createHash('md5').update(partitionKey, 'utf8').digest('hex')))
  }

  parseSequence = exports.parseSequence = fastParse
  stringifySequence = exports.stringifySequence = fastStringify
  partitionKeyToHashKey = exports.partitionKeyToHashKey = fastHashKey
})()
`;

if (!existsSync(file)) process.exit(0);
const text = readFileSync(file, "utf8");
if (!text.includes(MARK)) {
  const missing = EXPECTED.filter((s) => !text.includes(s));
  if (missing.length) console.warn(`patch-kinesalite: kinesalite/db/index.js does not match the expected code (${missing[0]}); not patched`);
  else {
    writeFileSync(file, text + PATCH);
    console.log("patch-kinesalite: BigInt sequence numbers and hash keys");
  }
}
