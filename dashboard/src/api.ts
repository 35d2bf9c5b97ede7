/** The API client: the key lives in sessionStorage and goes out as a Bearer token. */
import createClient from "openapi-fetch";
import type { components, paths } from "../../shared/api-types.ts";

const KEY = "linkflow.apiKey";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k: string) => sessionStorage.setItem(KEY, k);
export const dropKey = () => {
  sessionStorage.removeItem(KEY);
  me = null;
};

export type Scope = components["schemas"]["ApiKey"]["scopes"][number];
let me: { scopes: Scope[] } | null = null;

/** The signed-in key's scopes (GET /api/keys/me, once per sign-in); `key` checks a key before it is stored. */
export async function loadMe(key?: string): Promise<{ scopes: Scope[] }> {
  if (me && !key) return me;
  const got = await ok(api.GET("/api/keys/me", key ? { headers: { Authorization: `Bearer ${key}` } } : {}));
  me = { scopes: got.scopes };
  return me;
}
/** Whether the signed-in key may do what `scope` allows (admin implies every scope but operator). */
export const can = (scope: Scope) => !!me && (me.scopes.includes(scope) || (scope !== "operator" && me.scopes.includes("admin")));

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The typed client: paths, parameters and bodies from the spec (shared/api-types.ts, `npm run gen:api`). */
export const api = createClient<paths>({ baseUrl: location.origin });
api.use({
  // The stored key, unless the call sends its own (sign-in tries a key before storing it).
  onRequest({ request }) {
    const key = getKey();
    if (key && !request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${key}`);
    return request;
  },
  // A 401 for the stored key (or for no key) signs out.
  onResponse({ request, response }) {
    const sent = request.headers.get("Authorization")?.replace(/^Bearer /, "") ?? null;
    if (response.status === 401 && sent === getKey()) {
      dropKey();
      location.hash = "#/login";
    }
  },
});

/** The data of a client call, or an ApiFailure with the error's code, message and field. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response: res } = await call;
  if (res.ok) return data as T;
  const err: { code?: string; message?: string; field?: string } = (error as ErrorBody | undefined)?.error ?? {};
  throw new ApiFailure(res.status, err.code ?? "http_error", err.message ?? `${res.status} ${res.statusText}`, err.field);
}

export type Link = components["schemas"]["Link"];
export type Stats = components["schemas"]["Stats"];
export type EdgeStats = components["schemas"]["EdgeStats"];
export type PipelineStatus = components["schemas"]["PipelineStatus"];
type ErrorBody = components["schemas"]["Error"];

/**
 * Server-sent events over fetch (EventSource cannot send an Authorization header). Calls
 * `onEvent` per event until `signal` aborts or the stream ends.
 */
export async function stream(query: { link: number; max_seconds: number; bots?: "exclude" | "include" | "only" }, onEvent: (event: string, data: string) => void, signal: AbortSignal): Promise<void> {
  const body = await ok(api.GET("/api/stats/stream", { params: { query }, parseAs: "stream", signal }));
  const reader = body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      onEvent(event, data.join("\n"));
    }
  }
}
