/** The workspace overview (the landing page): totals, series, top links, countries, referrers. */
import { can } from "./api.ts";
import { clear, h } from "./dom.ts";
import { statsView } from "./stats-view.ts";

export async function overviewPage(app: HTMLElement, signal: AbortSignal): Promise<void> {
  const view = statsView({
    signal,
    csvName: "linkflow-overview",
    title: "Clicks over time, all links",
    groups: [
      { dim: "link", title: "Top links" },
      { dim: "country", title: "Top countries" },
      { dim: "referer_host", title: "Top referrers" },
      { dim: "device", title: "Devices" },
      { dim: "qr", title: "QR scans" },
      { dim: "utm_source", title: "UTM sources" },
    ],
  });
  clear(
    app,
    h("div", { class: "bar" }, h("h1", {}, "Overview"), can("links:write") ? h("a", { class: "button primary", href: "#/links/new" }, "New link") : null),
    view.el,
  );
  await view.load();
  const timer = window.setInterval(() => void view.load(), 30_000);
  signal.addEventListener("abort", () => clearInterval(timer));
}
