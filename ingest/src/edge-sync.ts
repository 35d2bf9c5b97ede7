import type { EdgeLink } from "../../shared/event.ts";
import { requestMessage, sign, SIGNATURE_HEADER } from "../../shared/signing.ts";
import type { Logger } from "pino";

/**
 * KV write-through: pushes a link's edge record to the worker's admin route so a new link
 * redirects at once. PostgreSQL stays the truth: if the worker is unreachable the link is
 * still created, and the edge finds it through /v1/resolve on its first click.
 */
export function edgeSync(adminUrl: string, secret: string, log: Logger) {
  return async function push(link: EdgeLink): Promise<boolean> {
    if (!adminUrl) return false;
    const path = "/_admin/links";
    const body = JSON.stringify(link);
    try {
      const res = await fetch(adminUrl + path, {
        method: "PUT",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: await sign(secret, requestMessage("PUT", path, body)) },
        body,
        signal: AbortSignal.timeout(2000),
      });
      if (!res.ok) log.warn({ status: res.status, code: link.code }, "edge KV push refused");
      return res.ok;
    } catch (err) {
      log.warn({ err: String(err), code: link.code }, "edge KV push failed; edge will resolve from origin");
      return false;
    }
  };
}
