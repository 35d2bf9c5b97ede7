/** The dashboard: hash routes, sign-in with an API key (sessionStorage), navigation. */
import { api, ApiFailure, dropKey, getKey, ok, setKey } from "./api.ts";
import { clear, h } from "./dom.ts";
import { linkPage } from "./link-page.ts";
import { linkFormPage, linksPage } from "./links.ts";
import { srePage } from "./sre.ts";
import { webhooksPage } from "./webhooks.ts";
import "./style.css";

const app = document.getElementById("app")!;
const nav = document.getElementById("nav")!;
let current: AbortController | undefined;

function loginPage(): void {
  const key = h("input", { type: "password", name: "key", placeholder: "lf_…", autocomplete: "off", required: true, "aria-label": "API key" });
  const msg = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste an API key (npm start prints the admin key; it is also in data/admin-key). It is kept in this tab only."),
    key,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    msg,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const k = key.value.trim();
    // Any answer but 401 means the key exists (a stats-only key gets 403 on links).
    ok(api.GET("/api/links", { params: { query: { limit: 1 } }, headers: { Authorization: `Bearer ${k}` } }))
      .then(() => true)
      .catch((err) => (err instanceof ApiFailure && err.status !== 401 ? true : ((msg.textContent = err.status === 401 ? "That key is not valid." : (err as Error).message), false)))
      .then((ok) => {
        if (!ok) return;
        setKey(k);
        location.hash = "#/links";
      });
  });
  clear(app, form);
  key.focus();
}

async function route(): Promise<void> {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/links";
  const signedIn = !!getKey();
  nav.hidden = !signedIn;
  if (!signedIn || path === "/login") return loginPage();
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", path.startsWith(`/${a.dataset.nav}`));
  let m: RegExpExecArray | null;
  try {
    if (path === "/links") await linksPage(app);
    else if (path === "/links/new") await linkFormPage(app, null);
    else if ((m = /^\/links\/(\d+)\/edit$/.exec(path))) await linkFormPage(app, Number(m[1]));
    else if ((m = /^\/links\/(\d+)$/.exec(path))) await linkPage(app, Number(m[1]), signal);
    else if (path === "/sre") await srePage(app, signal);
    else if (path === "/webhooks") await webhooksPage(app, signal);
    else clear(app, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/links" }, "Back to links")));
  } catch (e) {
    if (!signal.aborted) clear(app, h("p", { class: "error" }, (e as Error).message));
  }
}

document.getElementById("signout")!.addEventListener("click", () => {
  dropKey();
  location.hash = "#/login";
});
window.addEventListener("hashchange", () => void route());
void route();
