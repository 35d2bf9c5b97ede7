export const UTM_KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"] as const;

/**
 * The destination with the link's UTM parameters merged in: a parameter the URL already has
 * is kept as it is (never duplicated or overwritten); the others are appended.
 */
export function mergeUtm(url: string, utm: Record<string, string> | undefined): string {
  if (!utm || !Object.keys(utm).length) return url;
  const u = new URL(url);
  for (const [k, v] of Object.entries(utm)) if (v && !u.searchParams.has(k)) u.searchParams.append(k, v);
  return u.toString();
}
