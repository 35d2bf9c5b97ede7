import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

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
