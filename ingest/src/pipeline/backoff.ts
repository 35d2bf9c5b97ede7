/** Full-jitter exponential backoff: a random delay up to base·2^attempt, capped (ms). */
export const backoff = (attempt: number, baseMs = 100, capMs = 5_000) => Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
