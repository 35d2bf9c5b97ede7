/** The worker's few HTML pages: small, no external assets, not cacheable. */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const STYLE =
  "body{font:16px system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}" +
  "input,button{font:inherit;padding:.4rem .6rem}.e{color:#b00020}";

const page = (status: number, title: string, html: string, extra: Record<string, string> = {}) =>
  new Response(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
      `<meta name="robots" content="noindex"><title>${title}</title><style>${STYLE}</style></head>` +
      `<body><h1>${title}</h1>${html}</body></html>`,
    {
      status,
      headers: {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
        ...extra,
      },
    },
  );

export const pages = {
  notFound: () => page(404, "Link not found", "<p>This short link does not exist or is no longer active.</p>"),
  unavailable: () => page(503, "Temporarily unavailable", "<p>We could not look this link up right now. Please try again.</p>", { "Retry-After": "5" }),
  gone: () => page(410, "Link expired", "<p>This short link has expired and no longer redirects.</p>"),
  /** The password form: POSTs `password` to the page's own URL (no action attribute). */
  password: (error?: "wrong_password") =>
    page(
      error ? 401 : 200,
      "Password required",
      `<p>This link is protected. Enter its password to continue.</p>` +
        (error ? `<p class="e" role="alert">That password is not right. Please try again.</p>` : "") +
        `<form method="post"><input type="password" name="password" aria-label="Password" autocomplete="current-password" required autofocus maxlength="1024"> ` +
        `<button type="submit">Continue</button></form>`,
    ),
  /** Too many password submissions from this client for this link (edge/src/throttle.ts). */
  throttled: (retryAfterS: number) =>
    page(429, "Too many attempts", "<p>Too many password attempts for this link. Please wait a minute and try again.</p>", {
      "Retry-After": String(retryAfterS),
    }),
  /** A POST the worker will not read (not a form, or too large). */
  badForm: (status: 413 | 415) =>
    page(status, status === 413 ? "Too large" : "Unsupported form", "<p>Please submit the password form again.</p>"),
};
