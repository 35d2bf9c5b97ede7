import { keyRing, keysOf, type Keys } from "../../shared/keys.ts";
import type { Env } from "./env.ts";

/** The keys the worker signs with (EDGE_SECRET's), derived once per isolate. */
export const signingKeys = (env: Env): Promise<Keys> => keysOf(env.EDGE_SECRET);

/** The keys it accepts: EDGE_SECRET's, then EDGE_SECRET_PREVIOUS's while a rotation sets it. */
export const acceptedKeys = (env: Env): Promise<Keys[]> => keyRing(env.EDGE_SECRET, env.EDGE_SECRET_PREVIOUS || undefined);
