import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  path: string;
  webhookId: string;
  /** The verified payload ({ type, timestamp, data }). */
  payload: { type: string; timestamp: string; data: any };
}

/**
 * A webhook receiver on loopback: every request is verified with the `standardwebhooks`
 * package's Webhook.verify and the secret registered for its path; a request that does not
 * verify is counted (and answered 400). `mode` simulates trouble: 503 answers, or failing the
 * first N attempts of each message; `stop()` / `listen()` take it off the network altogether.
 */
export class WebhookReceiver {
  readonly secrets = new Map<string, string>();
  readonly received: Received[] = [];
  unverified = 0;
  requests = 0;
  mode: "ok" | "503" = "ok";
  /** Fail (500) each message's first attempts, this many. */
  failFirst = 0;
  private attemptsOf = new Map<string, number>();
  private server?: Server;
  port = 0;

  url(path: string) {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async listen(port = this.port): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req).then(([status, text]) => res.writeHead(status).end(text)));
    await new Promise<void>((r) => this.server!.listen(port, "127.0.0.1", () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Stops accepting connections (the port stays known, so listen() brings it back). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async handle(req: IncomingMessage): Promise<[number, string]> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    this.requests++;
    const raw = Buffer.concat(chunks).toString("utf8");
    const path = req.url ?? "/";
    const secret = this.secrets.get(path);
    if (this.mode === "503") return [503, "down"];
    let payload: Received["payload"];
    try {
      payload = new Webhook(secret ?? "whsec_AAAA").verify(raw, req.headers as Record<string, string>) as Received["payload"];
    } catch {
      this.unverified++;
      return [400, "bad signature"];
    }
    const id = String(req.headers["webhook-id"]);
    const n = (this.attemptsOf.get(id) ?? 0) + 1;
    this.attemptsOf.set(id, n);
    if (n <= this.failFirst) return [500, "try again"];
    this.received.push({ path, webhookId: id, payload });
    return [200, "ok"];
  }

  /** Distinct click_ids received on `path` in link.clicked messages. */
  clickIds(path: string): Set<string> {
    const out = new Set<string>();
    for (const m of this.received) if (m.path === path && m.payload.type === "link.clicked") for (const c of m.payload.data.clicks) out.add(c.click_id);
    return out;
  }
}
