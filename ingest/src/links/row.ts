import type { TargetingRule } from "../../../shared/event.ts";

/** A `SELECT * FROM links` row (bigint columns come back as strings). */
export interface LinkRow {
  id: string;
  workspace_id: string;
  domain: string;
  code: string;
  url: string;
  redirect_status: number;
  title: string | null;
  tags: string[];
  expires_at: Date | null;
  expired_url: string | null;
  max_clicks: string | null;
  password_hash: string | null;
  targeting: TargetingRule[];
  utm: Record<string, string>;
  archived: boolean;
  forward_query: boolean;
  crawlable: boolean;
  limit_reached_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** link_clicks' sum, where the query selected it (clicksColumn). */
  clicks?: string | number;
}
