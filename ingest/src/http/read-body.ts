import type { IncomingMessage } from "node:http";
import { bodyLimit } from "hono/body-limit";
import { MAX_BEACON_BYTES } from "../../../shared/event.ts";
import { ApiError } from "./errors.ts";

export const tooLarge = () => new ApiError(413, "body_too_large", `beacon bodies are limited to ${MAX_BEACON_BYTES} bytes`);
/** hono's bodyLimit for a beacon (a request that is not under @hono/node-server). */
export const beaconBodyLimit = bodyLimit({
  maxSize: MAX_BEACON_BYTES,
  onError: () => {
    throw tooLarge();
  },
});

/**
 * The body as text, read straight from Node's request when there is one: c.req.text() makes
 * @hono/node-server build a whole WHATWG Request (undici Request, ReadableStream,
 * AbortController) per beacon, which was about a fifth of ingest's CPU under single-click load.
 * Same limit as bodyLimit (declared length first, then what actually arrives, so a chunked body
 * is cut off too), same decoding as Request.text() (UTF-8, a BOM dropped, bad bytes → U+FFFD).
 */
export function readBody(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BEACON_BYTES) {
        incoming.off("data", onData);
        incoming.resume(); // drain the rest; the 413 goes out on this connection
        return reject(tooLarge());
      }
      chunks.push(chunk);
    };
    incoming.on("data", onData);
    incoming.once("end", () => resolve(new TextDecoder().decode(Buffer.concat(chunks, size))));
    incoming.once("error", reject);
  });
}
