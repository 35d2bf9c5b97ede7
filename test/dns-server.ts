import { createSocket } from "node:dgram";
import type { AddressInfo } from "node:net";

/**
 * A minimal authoritative DNS server on loopback (UDP) for tests: answers TXT questions from
 * `txt` (name → values; a missing name is NXDOMAIN, other types get an empty answer). Enough of
 * RFC 1035 for node:dns (c-ares): one question, answers by a pointer to it, no EDNS.
 */
export async function startDnsServer() {
  const txt = new Map<string, string[]>();
  const socket = createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    // The question: labels up to the zero byte, then QTYPE and QCLASS.
    let at = 12;
    const labels: string[] = [];
    while (at < msg.length && msg[at]! > 0) {
      labels.push(msg.toString("latin1", at + 1, at + 1 + msg[at]!));
      at += 1 + msg[at]!;
    }
    const qEnd = at + 5;
    if (qEnd > msg.length) return;
    const qtype = msg.readUInt16BE(at + 1);
    const values = txt.get(labels.join(".").toLowerCase());
    const answers = values && qtype === 16 ? values : [];
    const rrs = answers.map((value) => {
      const data = Buffer.from(value, "utf8");
      const chunks: Buffer[] = []; // character-strings of at most 255 bytes
      for (let i = 0; i < data.length || i === 0; i += 255) {
        const part = data.subarray(i, i + 255);
        chunks.push(Buffer.from([part.length]), part);
      }
      const rdata = Buffer.concat(chunks);
      const head = Buffer.alloc(12);
      head.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      head.writeUInt16BE(16, 2); // TXT
      head.writeUInt16BE(1, 4); // IN
      head.writeUInt32BE(0, 6); // TTL 0: tests change records between lookups
      head.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([head, rdata]);
    });
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // the query's id
    header.writeUInt16BE(0x8580 | (values ? 0 : 3), 2); // response, authoritative, RD, RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(rrs.length, 6);
    socket.send(Buffer.concat([header, msg.subarray(12, qEnd), ...rrs]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  const { port } = socket.address() as AddressInfo;
  return { txt, address: `127.0.0.1:${port}`, close: () => new Promise<void>((r) => socket.close(() => r())) };
}
