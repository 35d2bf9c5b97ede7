import type { EdgeLink } from "../../../shared/event.ts";
import { passwordVerifier, VERIFIER_SCHEME } from "../../../shared/password.ts";
import { mergeUtm } from "../../../shared/utm.ts";
import type { LinkRow } from "./row.ts";

/**
 * A row as the compact record the worker decides with (KV, /v1/resolve): the single mapping.
 * Empty optional fields are left out, so a plain link is `{ id, domain, code, url, status }`
 * (`forward_query` only when false, `crawlable` only when true: the defaults cost no bytes).
 * The password hash leaves ingest only sealed with the password
 * key (shared/password.ts passwordVerifier): a record read from KV or /v1/resolve allows no
 * offline guessing. A hash that cannot be sealed keeps the link locked (a verifier nothing matches).
 */
export async function toEdgeLink(r: LinkRow, passwordKey: Uint8Array<ArrayBuffer>): Promise<EdgeLink> {
  const utm = r.utm && Object.keys(r.utm).length ? r.utm : undefined;
  const password = r.password_hash ? ((await passwordVerifier(r.password_hash, passwordKey)) ?? `${VERIFIER_SCHEME}$0$$`) : undefined;
  return {
    id: Number(r.id),
    domain: r.domain,
    code: r.code,
    url: mergeUtm(r.url, utm),
    status: r.redirect_status as EdgeLink["status"],
    ...(r.expires_at ? { expires_at: new Date(r.expires_at).getTime() } : {}),
    ...(r.expired_url ? { expired_url: r.expired_url } : {}),
    ...(r.archived || r.limit_reached_at ? { gone: true as const } : {}),
    ...(password ? { password } : {}),
    ...(r.targeting?.length ? { targeting: r.targeting } : {}),
    ...(utm ? { utm } : {}),
    ...(r.forward_query === false ? { forward_query: false as const } : {}),
    ...(r.crawlable ? { crawlable: true as const } : {}),
  };
}
