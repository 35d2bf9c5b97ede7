import type { EdgeLink } from "../../shared/event.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import type { Logger } from "pino";

/** KV write-through: `push` a link's edge record, `remove` a (domain, code) key. */
export interface EdgeSync {
  push: (link: EdgeLink) => Promise<boolean>;
  remove: (domain: string, code: string) => Promise<boolean>;
}

/**
 * KV write-through: sends a link's edge record to the worker's admin route (PUT) so a new or
 * changed link takes effect at once, and DELETEs the key of a deleted (or re-slugged) link.
 * PostgreSQL stays the truth: if the worker is unreachable the change is still made, and the
 * edge learns it through /v1/resolve once its caches expire (a deleted link's KV copy stays
 * until the next successful delete; see README "Links").
 *
 * The result is callable (`sync(link)` = `sync.push(link)`) for callers written before `remove`.
 */
export function edgeSync(adminUrl: string, secret: string, log: Logger): EdgeSync & EdgeSync["push"] {
  const path = "/_admin/links";
  async function send(method: "PUT" | "DELETE", payload: object, code: string): Promise<boolean> {
    if (!adminUrl) return false;
    const body = JSON.stringify(payload);
    try {
      const res = await fetch(adminUrl + path, {
        method,
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(secret, requestMessage(method, path, body)) },
        body,
        signal: AbortSignal.timeout(2000),
      });
      if (!res.ok) log.warn({ status: res.status, code, method }, "edge KV write refused");
      return res.ok;
    } catch (err) {
      log.warn({ err: String(err), code, method }, "edge KV write failed; edge will resolve from origin");
      return false;
    }
  }
  const push = (link: EdgeLink) => send("PUT", link, link.code);
  const remove = (domain: string, code: string) => send("DELETE", { domain, code }, code);
  return Object.assign(push, { push, remove });
}
