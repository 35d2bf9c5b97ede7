/** Webhooks: the workspace's endpoints (/api/webhooks) and each one's recent deliveries. */
import { api, ok } from "./api.ts";
import type { components } from "../../shared/api-types.ts";
import { clear, h } from "./dom.ts";

type Endpoint = components["schemas"]["WebhookEndpoint"];
type Delivery = components["schemas"]["WebhookDelivery"];

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "–");

function deliveriesTable(rows: Delivery[]): HTMLElement {
  if (!rows.length) return h("p", { class: "muted" }, "No deliveries yet.");
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ["Created", "Event", "Status", "Attempts", "Last response", "Next attempt", "webhook-id"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      rows.map((d) =>
        h(
          "tr",
          {},
          h("td", {}, when(d.created_at)),
          h("td", {}, d.clicks === null ? d.event_type : `${d.event_type} (${d.clicks})`),
          h("td", { class: d.status === "failed" ? "error" : "" }, d.status === "failed" ? "dead-lettered" : d.status),
          h("td", {}, String(d.attempts)),
          h("td", {}, d.last_status_code !== null ? `HTTP ${d.last_status_code}` : (d.last_error ?? "–")),
          h("td", {}, when(d.next_attempt_at)),
          h("td", {}, h("code", {}, d.webhook_id)),
        ),
      ),
    ),
  );
}

async function endpointSection(e: Endpoint, signal: AbortSignal): Promise<HTMLElement> {
  const log = await ok(api.GET("/api/webhooks/{id}/deliveries", { params: { path: { id: e.id }, query: { limit: 20 } }, signal }));
  const failed = log.deliveries.filter((d) => d.status === "failed").length;
  const replay = h("button", { type: "button" }, "Replay dead-lettered");
  replay.addEventListener("click", () => {
    void ok(api.POST("/api/webhooks/{id}/replay", { params: { path: { id: e.id } } })).then((r) => (replay.textContent = `Replayed ${r.replayed}`));
  });
  return h(
    "section",
    { class: "webhook", "data-id": String(e.id) },
    h("div", { class: "bar" }, h("h2", {}, e.url), failed ? replay : h("span")),
    h("p", { class: "muted" }, `${e.events.join(", ")} · ${e.enabled ? "enabled" : "disabled"}${e.description ? ` · ${e.description}` : ""}`),
    e.failing_since
      ? h("p", { class: "warn", role: "status" }, `Not answering since ${new Date(e.failing_since).toLocaleString()}: messages are held, next try ${e.next_try_at ? new Date(e.next_try_at).toLocaleTimeString() : "soon"}`)
      : h("span"),
    deliveriesTable(log.deliveries),
  );
}

export async function webhooksPage(app: HTMLElement, signal: AbortSignal): Promise<void> {
  const { items } = await ok(api.GET("/api/webhooks", { signal }));
  if (signal.aborted) return;
  const sections = await Promise.all(items.map((e) => endpointSection(e, signal)));
  if (signal.aborted) return;
  clear(
    app,
    h("h1", {}, "Webhooks"),
    items.length ? h("div", {}, sections) : h("p", { class: "muted" }, "No webhook endpoints. Register one with POST /api/webhooks (see docs/WEBHOOKS.md)."),
  );
}
