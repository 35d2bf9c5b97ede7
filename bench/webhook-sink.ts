/** The webhook receiver of bench/webhooks.ts, in a process of its own: answers 204, counts clicks (GET /count). */
import { createServer } from "node:http";

let clicks = 0;
const server = createServer((req, res) => {
  if (req.method === "GET") return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ clicks }));
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { type: string; data: { clicks?: unknown[] } };
    if (m.type === "link.clicked") clicks += m.data.clicks?.length ?? 0;
    res.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`sink listening on ${process.env.PORT}`));
