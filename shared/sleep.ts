/** A promise that settles after `ms` (setTimeout: workerd and Node alike). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
