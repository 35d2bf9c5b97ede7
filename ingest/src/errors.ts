/**
 * Domain errors: plain `Error`s with a stable `code` (and the input field at fault), as
 * porsager/postgres's errors.js makes them. Domain code (links/, clicks/, auth/, pipeline/,
 * analytics/) throws these and knows nothing of HTTP; http/errors.ts alone turns a code into a
 * status, once.
 */
export const DOMAIN_ERRORS = {
  /** Input that breaks a rule: 400. */
  invalid: ["invalid_cursor", "unsafe_url", "unknown_domain", "domain_unverified", "invalid_csv", "invalid_query", "unsupported_event_version"],
  /** No such thing in the caller's workspace: 404. */
  missing: ["not_found"],
  /** Taken by another row (a PostgreSQL UNIQUE constraint said so): 409. */
  conflict: ["slug_taken"],
  /** More than one request may carry: 413. */
  tooLarge: ["too_many_rows"],
  /** Could not be done now, may succeed on retry: 503. */
  retry: ["code_space_exhausted", "unavailable"],
} as const;

export type DomainErrorCode = (typeof DOMAIN_ERRORS)[keyof typeof DOMAIN_ERRORS][number];

export interface DomainError extends Error {
  code: DomainErrorCode;
  field?: string;
}

export const domainError = (code: DomainErrorCode, message: string, field?: string): DomainError =>
  Object.assign(new Error(message), { code, ...(field ? { field } : {}) });

const CODES = new Set<string>(Object.values(DOMAIN_ERRORS).flat());
export const isDomainError = (err: unknown): err is DomainError =>
  err instanceof Error && CODES.has((err as { code?: unknown }).code as string);

/**
 * A service ingest needs at start-up did not answer: which one, at which address (credentials
 * left out), and the connection error's code. main.ts and `npm start` print its message as one
 * line and exit 1 instead of a stack trace (docs/OPERATIONS.md, "Start-up").
 */
export class UnreachableError extends Error {
  constructor(
    readonly service: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`cannot reach ${service} at ${address} (${reason})`);
    this.name = "UnreachableError";
  }
}

/** Codes that mean "nothing answered there" (Node, postgres.js, undici, the AWS SDK's handler). */
const CONNECT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EPIPE", "CONNECT_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_SOCKET", "TimeoutError"]);

/** The connection failure's code in an error, its causes or an AggregateError's errors (a dual-stack connect), if any. */
export function connectFailure(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== "object" || depth > 5) return undefined;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === "string" && CONNECT_CODES.has(e.code)) return e.code;
  if (typeof e.name === "string" && CONNECT_CODES.has(e.name)) return e.name;
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const code = connectFailure(inner, depth + 1);
    if (code) return code;
  }
  return undefined;
}

/** An address to print: the URL without user name and password. */
export function displayAddress(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(unparsable address)";
  }
}

/** Runs a start-up step against `service`; a connection failure becomes an UnreachableError. */
export async function reaching<T>(service: string, url: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    const code = connectFailure(err);
    if (code) throw new UnreachableError(service, displayAddress(url), code);
    throw err;
  }
}
