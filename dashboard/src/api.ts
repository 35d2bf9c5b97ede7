/** The API client: the key lives in sessionStorage and goes out as a Bearer token. */
const KEY = "linkflow.apiKey";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k: string) => sessionStorage.setItem(KEY, k);
export const dropKey = () => sessionStorage.removeItem(KEY);

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

export async function call(path: string, init: RequestInit = {}, key = getKey()): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  if (init.body && typeof init.body === "string") headers.set("content-type", "application/json");
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    let err: { code?: string; message?: string; field?: string } = {};
    try {
      err = ((await res.json()) as { error?: typeof err }).error ?? {};
    } catch {
      /* not JSON */
    }
    if (res.status === 401 && key === getKey()) {
      dropKey();
      location.hash = "#/login";
    }
    throw new ApiFailure(res.status, err.code ?? "http_error", err.message ?? `${res.status} ${res.statusText}`, err.field);
  }
  return res;
}

export async function get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const qs = q.toString();
  return (await call(qs ? `${path}?${qs}` : path)).json() as Promise<T>;
}

export async function send<T>(method: string, path: string, body: unknown): Promise<T> {
  return (await call(path, { method, body: JSON.stringify(body) })).json() as Promise<T>;
}

export interface Link {
  id: number;
  url: string;
  domain: string;
  code: string;
  short_url: string;
  title: string | null;
  tags: string[];
  redirect_status: number;
  expires_at: string | null;
  expired_url: string | null;
  max_clicks: number | null;
  has_password: boolean;
  targeting: unknown[];
  utm: Partial<Record<string, string>>;
  archived: boolean;
  limit_reached_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface Stats {
  from: string;
  to: string;
  interval: string;
  source: string;
  totals: { clicks: number; visitors: number };
  series: { t: string; clicks: number; visitors: number }[];
  breakdown: { value: string; clicks: number; visitors: number }[] | null;
}

/**
 * Server-sent events over fetch (EventSource cannot send an Authorization header). Calls
 * `onEvent` per event until `signal` aborts or the stream ends.
 */
export async function stream(path: string, onEvent: (event: string, data: string) => void, signal: AbortSignal): Promise<void> {
  const res = await call(path, { signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
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
