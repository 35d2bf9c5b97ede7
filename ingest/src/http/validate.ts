import type { z } from "zod";
import { ApiError } from "./errors.ts";

/** Parses a JSON body against `schema`; a 400 names the first offending field. */
export function parseJson<T extends z.ZodType>(schema: T, raw: string): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ApiError(400, "invalid_json", "the body is not valid JSON");
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.map(String).join(".");
  throw new ApiError(400, "invalid_body", field ? `${field}: ${issue.message}` : issue.message, field || undefined);
}
