import type { CacheTier, EdgeLink } from "../../shared/event.ts";
import type { Resolution } from "./resolve.ts";

/** What the worker does with one request, decided in one place from the resolved link. */
export type Decision =
  | { kind: "redirect"; status: EdgeLink["status"]; location: string; link: EdgeLink; tier: CacheTier }
  | { kind: "not_found" }
  | { kind: "unavailable" };

/** Pure: the resolution (and later the request's country, device, password…) → a decision. */
export function decide(resolution: Resolution): Decision {
  const { link, tier } = resolution;
  if (link === undefined) return { kind: "unavailable" };
  if (link === null) return { kind: "not_found" };
  return { kind: "redirect", status: link.status, location: link.url, link, tier };
}
