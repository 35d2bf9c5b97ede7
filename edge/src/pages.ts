/** The worker's few HTML pages: small, no external assets, not cacheable. */
const page = (status: number, title: string, text: string, extra: Record<string, string> = {}) =>
  new Response(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title>` +
      `<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}</style></head>` +
      `<body><h1>${title}</h1><p>${text}</p></body></html>`,
    {
      status,
      headers: {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        ...extra,
      },
    },
  );

export const pages = {
  notFound: () => page(404, "Link not found", "This short link does not exist or is no longer active."),
  unavailable: () => page(503, "Temporarily unavailable", "We could not look this link up right now. Please try again.", { "Retry-After": "5" }),
};
