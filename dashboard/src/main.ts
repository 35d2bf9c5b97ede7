/**
 * The dashboard: hash routes, sign-in with an API key (sessionStorage), navigation. What a key
 * is offered follows its scopes (GET /api/keys/me): a stats:read key gets the overview, link
 * pages and SRE, read-only; a page is listed in the nav only when its scope is there.
 * Adding a page: one entry in ROUTES (and one in NAV for a nav link).
 */
import { ApiFailure, can, dropKey, getKey, loadMe, setKey, type Scope } from "./api.ts";
import { clear, h } from "./dom.ts";
import { linkPage } from "./link-page.ts";
import { linkFormPage, linksPage } from "./links.ts";
import { overviewPage } from "./overview.ts";
import { srePage } from "./sre.ts";
import { webhooksPage } from "./webhooks.ts";
import "./style.css";

const app = document.getElementById("app")!;
const nav = document.getElementById("nav")!;
const navLinks = document.getElementById("nav-links")!;
let current: AbortController | undefined;

/** A page: its path pattern, the scope it needs, and how it renders (`m`: the pattern's match). */
interface Route {
  path: RegExp;
  scope: Scope;
  render: (app: HTMLElement, m: RegExpExecArray, signal: AbortSignal) => Promise<void> | void;
}
export const ROUTES: Route[] = [
  { path: /^\/overview$/, scope: "stats:read", render: (a, _m, s) => overviewPage(a, s) },
  { path: /^\/links$/, scope: "links:read", render: (a) => linksPage(a) },
  { path: /^\/links\/new$/, scope: "links:write", render: (a) => linkFormPage(a, null) },
  { path: /^\/links\/(\d+)\/edit$/, scope: "links:write", render: (a, m) => linkFormPage(a, Number(m[1])) },
  // A link's page: its settings need links:read, its stats stats:read; either scope opens it.
  { path: /^\/links\/(\d+)$/, scope: "stats:read", render: (a, m, s) => linkPage(a, Number(m[1]), s) },
  { path: /^\/links\/(\d+)$/, scope: "links:read", render: (a, m, s) => linkPage(a, Number(m[1]), s) },
  { path: /^\/sre$/, scope: "stats:read", render: (a, _m, s) => srePage(a, s) },
  { path: /^\/webhooks$/, scope: "webhooks:read", render: (a, _m, s) => webhooksPage(a, s) },
];
/** The nav: label, hash, and the scope that shows it. */
export const NAV: { label: string; href: string; scope: Scope }[] = [
  { label: "Overview", href: "#/overview", scope: "stats:read" },
  { label: "Links", href: "#/links", scope: "links:read" },
  { label: "SRE", href: "#/sre", scope: "stats:read" },
  { label: "Webhooks", href: "#/webhooks", scope: "webhooks:read" },
];

/** Where a key lands: the overview when it reads stats, else the links. */
const home = () => (can("stats:read") ? "#/overview" : can("links:read") ? "#/links" : "#/none");

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
    loadMe(k).then(
      () => {
        setKey(k);
        location.hash = home();
      },
      (err) => (msg.textContent = err instanceof ApiFailure && err.status === 401 ? "That key is not valid." : (err as Error).message),
    );
  });
  clear(app, form);
  key.focus();
}

async function route(): Promise<void> {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  const signedIn = !!getKey();
  nav.hidden = !signedIn;
  if (!signedIn || path === "/login") return loginPage();
  try {
    await loadMe();
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) return; // signed out by the client
    return clear(app, h("h1", {}, "Cannot reach the API"), h("p", { class: "error" }, (e as Error).message), h("button", { type: "button", onclick: () => void route() }, "Retry"));
  }
  clear(navLinks, NAV.filter((n) => can(n.scope)).map((n) => h("a", { href: n.href, class: path.startsWith(n.href.slice(1)) ? "active" : null, "aria-current": path.startsWith(n.href.slice(1)) ? "page" : null }, n.label)));
  if (path === "/") return void (location.hash = home());
  try {
    const matching = ROUTES.filter((x) => x.path.test(path));
    const r = matching.find((x) => can(x.scope));
    if (r) await r.render(app, r.path.exec(path)!, signal);
    else if (matching.length) clear(app, h("h1", {}, "Not available to this key"), h("p", {}, `This page needs the '${matching[0]!.scope}' scope, which this key lacks.`), h("p", {}, h("a", { href: home() }, "Back")));
    else if (path === "/none") clear(app, h("h1", {}, "Nothing to show"), h("p", {}, "This key has neither the stats:read nor the links:read scope."));
    else clear(app, h("h1", {}, "Not found"), h("p", {}, h("a", { href: home() }, "Back")));
  } catch (e) {
    if (!signal.aborted) clear(app, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, (e as Error).message), h("p", {}, h("a", { href: home() }, "Back")));
  }
}

document.getElementById("signout")!.addEventListener("click", () => {
  dropKey();
  location.hash = "#/login";
});
window.addEventListener("hashchange", () => void route());
void route();
