import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Sql } from "../db/connect.ts";

/**
 * `admin` manages its own workspace (and implies the other workspace scopes); `operator` is the
 * instance's: pipeline, dead letters, instance-wide SRE views, new workspaces. `admin` does not
 * imply it; only an operator key can grant it (keys-routes.ts); the bootstrap key holds it.
 */
export const SCOPES = ["links:read", "links:write", "stats:read", "webhooks:read", "webhooks:write", "admin", "operator"] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  keyId: number;
  workspaceId: number;
  scopes: Scope[];
  requestsPerMinute: number;
}

const KEY_RE = /^lf_([A-Za-z0-9]{8})_[A-Za-z0-9_-]{16,128}$/;
const sha256 = (s: string) => createHash("sha256").update(s).digest();

/**
 * The lookup prefix: generated keys carry it; an operator-chosen ADMIN_API_KEY of another shape
 * gets one derived from its hash (so it still never appears in the table).
 */
function prefixOf(key: string): string | null {
  if (key.length < 16 || key.length > 256) return null;
  return KEY_RE.exec(key)?.[1] ?? "h" + sha256(key).toString("hex").slice(0, 7);
}

/** A new key: `lf_<8-char prefix>_<secret>`. Only its hash is stored; the prefix finds the row. */
export function generateKey(): string {
  const prefix = randomBytes(6).toString("base64url").replace(/[-_]/g, "x").slice(0, 8);
  return `lf_${prefix}_${randomBytes(24).toString("base64url")}`;
}

/**
 * Stores the bootstrap `key` (hashed) for the default workspace with `scopes`, or re-enables it
 * and sets its scopes if it is already there (a key stored by an earlier version gains new ones).
 */
export async function ensureKey(sql: Sql, key: string, name: string, scopes: Scope[]): Promise<void> {
  const prefix = prefixOf(key);
  if (!prefix) throw new Error("an API key must be 16 to 256 characters long");
  await sql`
    INSERT INTO api_keys (workspace_id, name, prefix, key_hash, scopes)
    VALUES ((SELECT min(id) FROM workspaces), ${name}, ${prefix}, ${sha256(key)}, ${sql.array(scopes)})
    ON CONFLICT (prefix) DO UPDATE SET key_hash = excluded.key_hash, scopes = excluded.scopes, revoked_at = NULL`;
}

/** The principal behind a bearer key, or null (unknown, revoked, or wrong secret). */
export async function authenticate(sql: Sql, key: string): Promise<Principal | null> {
  const prefix = prefixOf(key);
  if (!prefix) return null;
  const [row] = await sql<{ id: string; workspace_id: string; key_hash: Buffer; scopes: Scope[]; requests_per_minute: number }[]>`
    SELECT id, workspace_id, key_hash, scopes, requests_per_minute FROM api_keys WHERE prefix = ${prefix} AND revoked_at IS NULL`;
  if (!row || !timingSafeEqual(row.key_hash, sha256(key))) return null;
  return { keyId: Number(row.id), workspaceId: Number(row.workspace_id), scopes: row.scopes, requestsPerMinute: row.requests_per_minute };
}

export interface KeyRecord {
  id: number;
  workspace_id: number;
  name: string;
  prefix: string;
  scopes: Scope[];
  requests_per_minute: number;
  created_at: Date;
  revoked_at: Date | null;
}

/** Creates a key in `workspaceId`; the returned secret is shown once and never stored. */
export async function createKey(sql: Sql, workspaceId: number, name: string, scopes: Scope[], requestsPerMinute = 600): Promise<{ key: string; record: KeyRecord }> {
  const key = generateKey();
  const [row] = await sql<KeyRecord[]>`
    INSERT INTO api_keys (workspace_id, name, prefix, key_hash, scopes, requests_per_minute)
    VALUES (${workspaceId}, ${name}, ${prefixOf(key)!}, ${sha256(key)}, ${sql.array(scopes)}, ${requestsPerMinute})
    RETURNING id, workspace_id, name, prefix, scopes, requests_per_minute, created_at, revoked_at`;
  return { key, record: { ...row!, id: Number(row!.id), workspace_id: Number(row!.workspace_id) } };
}
