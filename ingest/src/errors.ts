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
