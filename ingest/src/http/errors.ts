import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { DOMAIN_ERRORS, type DomainError, type DomainErrorCode } from "../errors.ts";

/** An error with a stable machine-readable code; `app.onError` turns it into JSON. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(status, { message });
  }
}

export interface ErrorBody {
  error: { status: number; code: string; message: string; field?: string };
}

export const errorBody = (status: number, code: string, message: string, field?: string): ErrorBody => ({
  error: { status, code, message, ...(field ? { field } : {}) },
});

const STATUS_OF_KIND: Record<keyof typeof DOMAIN_ERRORS, ContentfulStatusCode> = { invalid: 400, missing: 404, conflict: 409, tooLarge: 413, retry: 503 };
/** The one mapping of domain error codes to HTTP statuses. */
export const DOMAIN_ERROR_STATUS = Object.fromEntries(
  Object.entries(DOMAIN_ERRORS).flatMap(([kind, codes]) => codes.map((code) => [code, STATUS_OF_KIND[kind as keyof typeof DOMAIN_ERRORS]])),
) as Record<DomainErrorCode, ContentfulStatusCode>;

/** A domain error as the HTTP answer: its status, and the same JSON body as every error. */
export const domainErrorResponse = (err: DomainError) => {
  const status = DOMAIN_ERROR_STATUS[err.code];
  return { status, body: errorBody(status, err.code, err.message, err.field) };
};
