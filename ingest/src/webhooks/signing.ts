import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com), through the reference
 * `standardwebhooks` package: receivers verify with the same package (or any implementation of
 * the specification) and the endpoint's secret.
 */

/** A new endpoint secret: `whsec_` and 24 random bytes in base64, the format the package reads. */
export const generateSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

export interface SignedHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/**
 * The three headers for one attempt: the id is the message's (the same on every attempt, so a
 * receiver deduplicates), the timestamp and signature the attempt's (receivers refuse a
 * timestamp more than 5 minutes off, so a retry hours later is signed again).
 */
export function signHeaders(secret: string, webhookId: string, body: string, at = new Date(), previous?: string | null): SignedHeaders {
  // During a rotation's overlap both secrets sign: the specification's space-separated list, any one of which verifies.
  const signature = [secret, ...(previous ? [previous] : [])].map((s) => new Webhook(s).sign(webhookId, at, body)).join(" ");
  return { "webhook-id": webhookId, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signature };
}
