import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, json } from "../api-router.ts";
import { apiRouter, bearerSecurity } from "../openapi.ts";
import { requireScope } from "../auth.ts";
import type { Sql } from "../../db/connect.ts";
import { WEBHOOK_EVENTS } from "../../webhooks/events.ts";
import type { WebhookStore } from "../../webhooks/store.ts";

const tags = ["webhooks"];
const security = bearerSecurity;

const EventsSchema = z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length);
const EndpointSchema = z
  .object({
    id: z.number().int(),
    url: z.string(),
    description: z.string().nullable(),
    events: EventsSchema,
    enabled: z.boolean(),
    failing_since: z.string().nullable().openapi({
      description: "when the receiver stopped answering (no answer, timeout, 5xx, 429), null while it is up: the endpoint's messages are held until next_try_at",
    }),
    next_try_at: z.string().nullable().openapi({ description: "while failing: when the sender tries the endpoint again (backing off after each failed round)" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("WebhookEndpoint");
const EndpointWithSecretSchema = EndpointSchema.extend({
  secret: z.string().openapi({ description: "the signing secret (whsec_…), shown only now: verify each message with it (Standard Webhooks)" }),
}).openapi("WebhookEndpointWithSecret");
const CreateBody = z
  .object({
    url: z.string().min(1).max(2048).openapi({ example: "https://hooks.example.com/linkflow" }),
    description: z.string().max(500).nullable().optional(),
    events: EventsSchema,
    enabled: z.boolean().optional(),
  })
  .strict()
  .openapi("WebhookEndpointCreate");
const UpdateBody = CreateBody.partial().strict().openapi("WebhookEndpointUpdate");
const DeliverySchema = z
  .object({
    id: z.number().int(),
    webhook_id: z.string().openapi({ description: "the message's webhook-id header: the same on every attempt and replay" }),
    event_type: z.string(),
    status: z.enum(["pending", "delivered", "failed"]).openapi({ description: "failed: dead-lettered after the last attempt (replay it)" }),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    last_attempt_at: z.string().nullable(),
    delivered_at: z.string().nullable(),
    clicks: z.number().int().nullable().openapi({ description: "clicks in a link.clicked message" }),
  })
  .openapi("WebhookDelivery");
const IdParams = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: "id", in: "path" } }) });
const DeliveryParams = IdParams.extend({ delivery_id: z.coerce.number().int().positive().openapi({ param: { name: "delivery_id", in: "path" } }) });
const DeliveriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ type: "integer", minimum: 1, maximum: 200, default: 50 }),
  before: z.coerce.number().int().positive().optional().openapi({ type: "integer", description: "the next_before of the previous page" }),
  status: z.enum(["pending", "delivered", "failed"]).optional(),
});

/** /api/webhooks: endpoints (CRUD, secret rotation), their delivery log and replays, in the caller's workspace. */
export function webhookRoutes({ sql, store }: { sql: Sql; store: WebhookStore }) {
  const read = requireScope(sql, "webhooks:read");
  const write = requireScope(sql, "webhooks:write");
  const app = apiRouter();
  const ws = (c: { var: { principal: { workspaceId: number } } }) => c.var.principal.workspaceId;

  app.openapi(
    createRoute({
      method: "post", path: "/", operationId: "createWebhook", tags, security, middleware: [write] as const,
      summary: "Register a webhook endpoint (its signing secret is shown once)",
      request: { body: { content: { "application/json": { schema: CreateBody } }, required: true } },
      responses: { 201: json(EndpointWithSecretSchema, "the endpoint, with its secret"), ...errorResponses(400, 401, 403, 415, 429) },
    }),
    async (c) => c.json(await store.create(ws(c), c.req.valid("json")), 201),
  );
  app.openapi(
    createRoute({
      method: "get", path: "/", operationId: "listWebhooks", tags, security, middleware: [read] as const,
      summary: "The workspace's webhook endpoints (no secrets)",
      responses: { 200: json(z.object({ items: z.array(EndpointSchema) }), "the endpoints"), ...errorResponses(401, 403, 429) },
    }),
    async (c) => c.json({ items: await store.list(ws(c)) }, 200),
  );
  app.openapi(
    createRoute({
      method: "get", path: "/{id}", operationId: "getWebhook", tags, security, middleware: [read] as const,
      summary: "A webhook endpoint", request: { params: IdParams },
      responses: { 200: json(EndpointSchema, "the endpoint"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json(await store.get(ws(c), c.req.valid("param").id), 200),
  );
  app.openapi(
    createRoute({
      method: "patch", path: "/{id}", operationId: "updateWebhook", tags, security, middleware: [write] as const,
      summary: "Change a webhook endpoint's URL, events, description or enabled flag",
      request: { params: IdParams, body: { content: { "application/json": { schema: UpdateBody } }, required: true } },
      responses: { 200: json(EndpointSchema, "the endpoint"), ...errorResponses(400, 401, 403, 404, 415, 429) },
    }),
    async (c) => c.json(await store.update(ws(c), c.req.valid("param").id, c.req.valid("json")), 200),
  );
  app.openapi(
    createRoute({
      method: "delete", path: "/{id}", operationId: "deleteWebhook", tags, security, middleware: [write] as const,
      summary: "Delete a webhook endpoint, its delivery log and what it had pending", request: { params: IdParams },
      responses: { 200: json(z.object({ deleted: z.literal(true) }), "deleted"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      await store.remove(ws(c), c.req.valid("param").id);
      return c.json({ deleted: true as const }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post", path: "/{id}/rotate-secret", operationId: "rotateWebhookSecret", tags, security, middleware: [write] as const,
      summary: "Replace the endpoint's signing secret (the new one is shown once; the previous one also signs for 24 hours)", request: { params: IdParams },
      responses: { 200: json(EndpointWithSecretSchema, "the endpoint, with its new secret"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json(await store.rotateSecret(ws(c), c.req.valid("param").id), 200),
  );
  app.openapi(
    createRoute({
      method: "get", path: "/{id}/deliveries", operationId: "listWebhookDeliveries", tags, security, middleware: [read] as const,
      summary: "The endpoint's delivery log, newest first: status, attempts, last response, next attempt",
      request: { params: IdParams, query: DeliveriesQuery },
      responses: { 200: json(z.object({ deliveries: z.array(DeliverySchema), next_before: z.number().int().nullable() }), "a page of the log"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json(await store.deliveries(ws(c), c.req.valid("param").id, c.req.valid("query")), 200),
  );
  app.openapi(
    createRoute({
      method: "post", path: "/{id}/deliveries/{delivery_id}/replay", operationId: "replayWebhookDelivery", tags, security, middleware: [write] as const,
      summary: "Send one message again now (same webhook-id and payload; its attempts start over)", request: { params: DeliveryParams },
      responses: { 200: json(DeliverySchema, "the message, pending again"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await store.replay(ws(c), p.id, p.delivery_id), 200);
    },
  );
  app.openapi(
    createRoute({
      method: "post", path: "/{id}/replay", operationId: "replayWebhookFailures", tags, security, middleware: [write] as const,
      summary: "Send every dead-lettered (failed) message of the endpoint again", request: { params: IdParams },
      responses: { 200: json(z.object({ replayed: z.number().int() }), "how many went back to pending"), ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => c.json({ replayed: await store.replayFailed(ws(c), c.req.valid("param").id) }, 200),
  );
  return app;
}
