/**
 * The visitor's query forwarded to a destination (Shlink's `forwardQuery`, Dub's default), as
 * plain string work on the already serialised URLs: no `new URL()`, and both sides keep their
 * own encoding (re-serialising through URLSearchParams would turn `%20` into `+`, `?flag` into
 * `?flag=`…). Precedence, as Shlink and Dub have it: a key the visitor sends replaces every
 * pair of that key in the destination (whose query already holds the link's UTM, which never
 * overrides the destination's own); the other pairs of the destination stay, in order, and the
 * visitor's follow. The QR marker `qr=1` is never forwarded.
 */

/** `s` decoded as URLSearchParams decodes a key or value ("+" is a space); a bad escape is kept as it is. */
const decode = (s: string) => {
  const plus = s.includes("+") ? s.replaceAll("+", " ") : s;
  if (!plus.includes("%")) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
};
const keyOf = (pair: string) => {
  const eq = pair.indexOf("=");
  return decode(eq < 0 ? pair : pair.slice(0, eq));
};
const isQrMarker = (pair: string) => {
  const eq = pair.indexOf("=");
  return eq > 0 && decode(pair.slice(0, eq)) === "qr" && decode(pair.slice(eq + 1)) === "1";
};

/** The raw query of a request URL (after `?`, serialised by the URL parser), "" without one. */
export const queryOf = (url: string) => {
  const q = url.indexOf("?");
  return q < 0 ? "" : url.slice(q + 1);
};

/**
 * `url` with the visitor's raw `query` (no `?`) forwarded into it, before any fragment. A query
 * with nothing to forward (empty, or only `qr=1`) returns `url` unchanged.
 */
export function forwardQuery(url: string, query: string): string {
  const visitor = query.split("&").filter((p) => p !== "" && !isQrMarker(p));
  if (!visitor.length) return url;
  const keys = new Set(visitor.map(keyOf));
  const hash = url.indexOf("#");
  const head = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? "" : url.slice(hash);
  const q = head.indexOf("?");
  const own = q < 0 ? [] : head.slice(q + 1).split("&").filter((p) => p !== "" && !keys.has(keyOf(p)));
  return `${q < 0 ? head : head.slice(0, q)}?${own.concat(visitor).join("&")}${fragment}`;
}
