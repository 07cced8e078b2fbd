import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  customType,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

/**
 * Drizzle mirror of migrations/*.sql, used for typed queries. The SQL files are the
 * source of truth: change them first, then this file.
 */

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const money = (name: string) => numeric(name, { precision: 20, scale: 6, mode: "number" });

export const organizations = pgTable("organizations", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique("organizations_name_key"),
  createdAt: createdAt(),
  policyCombining: text("policy_combining").notNull().default("deny_overrides"),
  rateLimitDefaults: jsonb("rate_limit_defaults").$type<Record<string, unknown>>().notNull().default({}),
  budgetConfig: jsonb("budget_config").$type<Record<string, unknown>>().notNull().default({}),
});

/** The owning organization: every tenant table has one. */
const organizationRef = () =>
  text("organization_id")
    .notNull()
    .references(() => organizations.id);

export const users = pgTable("users", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  email: text("email").notNull(),
  name: text("name"),
  createdAt: createdAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    organizationId: organizationRef(),
    userId: text("user_id").references(() => users.id),
    name: text("name").notNull(),
    role: text("role").notNull(),
    team: text("team"),
    platformAdmin: boolean("platform_admin").notNull().default(false),
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique("api_keys_key_hash_key"),
    createdBy: text("created_by"),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (table) => [index("api_keys_organization_idx").on(table.organizationId, table.id)],
);

export const auditEvents = pgTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    organizationId: organizationRef(),
    actorType: text("actor_type").notNull(),
    actorId: text("actor_id").notNull(),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id"),
    requestId: text("request_id"),
    details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (table) => [
    index("audit_events_organization_idx").on(table.organizationId, table.id),
    index("audit_events_resource_idx").on(table.organizationId, table.resourceType, table.resourceId),
  ],
);

export const externalAgents = pgTable(
  "external_agents",
  {
    id: text("id").primaryKey(),
    organizationId: organizationRef(),
    name: text("name").notNull(),
    description: text("description"),
    platform: text("platform").notNull(),
    webhookUrl: text("webhook_url").notNull(),
    authType: text("auth_type").notNull(),
    authConfig: jsonb("auth_config").$type<Record<string, unknown>>().notNull().default({}),
    platformConfig: jsonb("platform_config").$type<Record<string, unknown>>().notNull().default({}),
    rateLimitConfig: jsonb("rate_limit_config").$type<Record<string, unknown>>().notNull().default({}),
    budgetConfig: jsonb("budget_config").$type<Record<string, unknown>>().notNull().default({}),
    capabilities: jsonb("capabilities").$type<string[]>().notNull().default([]),
    config: jsonb("config").$type<Record<string, unknown>>().notNull().default({}),
    tags: text("tags").array().notNull().default(sql`'{}'`),
    status: text("status").notNull().default("active"),
    version: integer("version").notNull().default(1),
    createdBy: text("created_by"),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
    approvalConfig: jsonb("approval_config").$type<Record<string, unknown>>(),
    a2aPublished: boolean("a2a_published").notNull().default(false),
  },
  (table) => [
    uniqueIndex("external_agents_org_name_key")
      .on(table.organizationId, table.name)
      .where(sql`status <> 'deleted'`),
    index("external_agents_org_idx").on(table.organizationId, table.id),
    index("external_agents_org_status_idx").on(table.organizationId, table.status, table.id),
    index("external_agents_org_platform_idx").on(table.organizationId, table.platform, table.id),
    index("external_agents_tags_idx").using("gin", table.tags),
  ],
);

export type ExternalAgentRow = typeof externalAgents.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type OrganizationRow = typeof organizations.$inferSelect;

export const policies = pgTable("policies", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  name: text("name").notNull(),
  description: text("description"),
  effect: text("effect").notNull(),
  priority: integer("priority").notNull().default(0),
  enabled: boolean("enabled").notNull().default(true),
  conditions: jsonb("conditions").$type<unknown[]>().notNull().default([]),
  cedar: text("cedar"),
  createdBy: text("created_by"),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const budgetUsage = pgTable(
  "budget_usage",
  {
    organizationId: organizationRef(),
    scope: text("scope").notNull(),
    scopeId: text("scope_id").notNull(),
    period: text("period").notNull(),
    periodStart: date("period_start").notNull(),
    spent: money("spent").notNull().default(0),
    reserved: money("reserved").notNull().default(0),
    invocations: integer("invocations").notNull().default(0),
    warningNotifiedAt: timestamp("warning_notified_at", { withTimezone: true }),
    degradationNotifiedAt: timestamp("degradation_notified_at", { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.scope, table.scopeId, table.period, table.periodStart] })],
);

export const invocations = pgTable("invocations", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  externalAgentId: text("external_agent_id")
    .notNull()
    .references(() => externalAgents.id),
  status: text("status").notNull(),
  idempotencyKey: text("idempotency_key"),
  externalUserId: text("external_user_id"),
  externalUserEmail: text("external_user_email"),
  externalUserName: text("external_user_name"),
  externalUserRole: text("external_user_role"),
  externalSystem: text("external_system"),
  externalSessionId: text("external_session_id"),
  externalTraceId: text("external_trace_id"),
  externalContext: jsonb("external_context").$type<Record<string, unknown>>(),
  principalType: text("principal_type").notNull(),
  principalId: text("principal_id").notNull(),
  apiKeyPrefix: text("api_key_prefix"),
  team: text("team"),
  agentName: text("agent_name").notNull(),
  agentEndpoint: text("agent_endpoint").notNull(),
  agentVersion: integer("agent_version").notNull(),
  traceId: text("trace_id").notNull(),
  spanId: text("span_id").notNull(),
  parentSpanId: text("parent_span_id"),
  parentInvocationId: text("parent_invocation_id"),
  requestIp: text("request_ip"),
  userAgent: text("user_agent"),
  requestBody: jsonb("request_body").$type<unknown>(),
  responseStatus: integer("response_status"),
  responseBody: jsonb("response_body").$type<unknown>(),
  errorMessage: text("error_message"),
  durationMs: integer("duration_ms"),
  estimatedCost: money("estimated_cost").notNull().default(0),
  reservedCost: money("reserved_cost").notNull().default(0),
  costUsd: money("cost_usd"),
  degraded: boolean("degraded").notNull().default(false),
  degradedReasons: text("degraded_reasons").array().notNull().default(sql`'{}'`),
  governance: jsonb("governance").$type<Record<string, unknown>>().notNull().default({}),
  policyIds: text("policy_ids").array().notNull().default(sql`'{}'`),
  createdAt: createdAt(),
  completedAt: timestamp("completed_at", { withTimezone: true }),
  chainSeq: bigint("chain_seq", { mode: "number" }),
  prevHash: text("prev_hash"),
  recordHash: text("record_hash"),
  identityHash: text("identity_hash"),
  bodyHash: text("body_hash"),
  redactedAt: timestamp("redacted_at", { withTimezone: true }),
  webhookDeliveryStatus: text("webhook_delivery_status"),
  webhookDeliveryError: text("webhook_delivery_error"),
  webhookDeliveredAt: timestamp("webhook_delivered_at", { withTimezone: true }),
});

export const lineageChainHeads = pgTable("lineage_chain_heads", {
  organizationId: text("organization_id")
    .primaryKey()
    .references(() => organizations.id),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
  lastHash: text("last_hash").notNull(),
});

export type PolicyRow = typeof policies.$inferSelect;
export type InvocationRow = typeof invocations.$inferSelect;
export type BudgetUsageRow = typeof budgetUsage.$inferSelect;

export const webhookSubscriptions = pgTable("webhook_subscriptions", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  url: text("url").notNull(),
  events: text("events").array().notNull(),
  description: text("description"),
  secret: jsonb("secret").$type<Record<string, unknown>>().notNull(),
  previousSecret: jsonb("previous_secret").$type<Record<string, unknown>>(),
  previousSecretUntil: timestamp("previous_secret_until", { withTimezone: true }),
  active: boolean("active").notNull().default(true),
  createdBy: text("created_by"),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const deliveries = pgTable("deliveries", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  target: text("target").notNull(),
  eventType: text("event_type").notNull(),
  externalAgentId: text("external_agent_id").references(() => externalAgents.id),
  invocationId: text("invocation_id"),
  subscriptionId: text("subscription_id").references(() => webhookSubscriptions.id),
  platform: text("platform"),
  payload: jsonb("payload").$type<Record<string, unknown>>(),
  status: text("status").notNull().default("pending"),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
  leaseUntil: timestamp("lease_until", { withTimezone: true }),
  lastStatusCode: integer("last_status_code"),
  lastError: text("last_error"),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  deliveredAt: timestamp("delivered_at", { withTimezone: true }),
  parked: boolean("parked").notNull().default(false),
});

export const deliveryAttempts = pgTable(
  "delivery_attempts",
  {
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => deliveries.id),
    attempt: integer("attempt").notNull(),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
    durationMs: integer("duration_ms").notNull(),
    statusCode: integer("status_code"),
    outcome: text("outcome").notNull(),
    error: text("error"),
  },
  (table) => [primaryKey({ columns: [table.deliveryId, table.attempt] })],
);

export const deliveryEndpoints = pgTable("delivery_endpoints", {
  endpoint: text("endpoint").primaryKey(),
  organizationId: organizationRef(),
  failingSince: timestamp("failing_since", { withTimezone: true }),
  lastFailureAt: timestamp("last_failure_at", { withTimezone: true }),
  pausedAt: timestamp("paused_at", { withTimezone: true }),
});

export type WebhookSubscriptionRow = typeof webhookSubscriptions.$inferSelect;
export type DeliveryRow = typeof deliveries.$inferSelect;
export type DeliveryAttemptRow = typeof deliveryAttempts.$inferSelect;

export const approvalRules = pgTable("approval_rules", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  name: text("name").notNull(),
  enabled: boolean("enabled").notNull().default(true),
  externalAgentIds: text("external_agent_ids").array().notNull().default(sql`'{}'`),
  triggers: jsonb("triggers").$type<Record<string, unknown>>().notNull(),
  workflow: jsonb("workflow").$type<Record<string, unknown>>().notNull().default({}),
  trustedUsers: text("trusted_users").array().notNull().default(sql`'{}'`),
  createdBy: text("created_by"),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const approvals = pgTable("approvals", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  invocationId: text("invocation_id")
    .notNull()
    .references(() => invocations.id),
  externalAgentId: text("external_agent_id")
    .notNull()
    .references(() => externalAgents.id),
  status: text("status").notNull().default("pending"),
  reasons: text("reasons").array().notNull(),
  fingerprint: text("fingerprint").notNull(),
  summary: text("summary").notNull(),
  requesterPrincipalId: text("requester_principal_id").notNull(),
  requesterRoles: text("requester_roles").array().notNull(),
  requesterExternalUser: text("requester_external_user"),
  workflow: jsonb("workflow").$type<Record<string, unknown>>().notNull(),
  requiredApprovals: integer("required_approvals").notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  escalateAt: timestamp("escalate_at", { withTimezone: true }),
  escalatedAt: timestamp("escalated_at", { withTimezone: true }),
  notifyAt: timestamp("notify_at", { withTimezone: true }),
  notificationsSent: integer("notifications_sent").notNull().default(0),
  decidedAt: timestamp("decided_at", { withTimezone: true }),
  decisionReason: text("decision_reason"),
  createdAt: createdAt(),
});

export const approvalDecisions = pgTable(
  "approval_decisions",
  {
    approvalId: text("approval_id")
      .notNull()
      .references(() => approvals.id),
    approverId: text("approver_id").notNull(),
    decision: text("decision").notNull(),
    reason: text("reason"),
    createdAt: createdAt(),
  },
  (table) => [primaryKey({ columns: [table.approvalId, table.approverId] })],
);

export type ApprovalRuleRow = typeof approvalRules.$inferSelect;
export type ApprovalRow = typeof approvals.$inferSelect;

const timestampTz = (name: string) => timestamp(name, { withTimezone: true });

export const managedAgents = pgTable("managed_agents", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  name: text("name").notNull(),
  version: text("version").notNull(),
  description: text("description").notNull().default(""),
  type: text("type").notNull(),
  tags: text("tags").array().notNull().default(sql`'{}'`),
  subscribedTopics: text("subscribed_topics").array().notNull(),
  findingsTopic: text("findings_topic").notNull(),
  command: text("command"),
  packageDir: text("package_dir"),
  resourceHints: jsonb("resource_hints").$type<Record<string, string>>().notNull().default({}),
  configSchema: jsonb("config_schema").$type<Record<string, unknown>>(),
  configDefaults: jsonb("config_defaults").$type<Record<string, unknown>>().notNull().default({}),
  configVersion: integer("config_version").notNull().default(0),
  runtimeOverrides: jsonb("runtime_overrides").$type<Record<string, unknown>>().notNull().default({}),
  state: text("state").notNull(),
  stateChangedAt: timestampTz("state_changed_at").notNull().defaultNow(),
  health: text("health").notNull().default("unknown"),
  heartbeatIntervalS: integer("heartbeat_interval_s").notNull().default(30),
  lastHeartbeatAt: timestampTz("last_heartbeat_at"),
  lastHeartbeat: jsonb("last_heartbeat").$type<Record<string, unknown>>(),
  tokenGeneration: integer("token_generation").notNull().default(0),
  createdBy: text("created_by"),
  createdAt: createdAt(),
  updatedAt: timestampTz("updated_at").notNull().defaultNow(),
  deletedAt: timestampTz("deleted_at"),
});

const managedAgentRef = () =>
  text("agent_id")
    .notNull()
    .references(() => managedAgents.id);

export const managedAgentTransitions = pgTable("managed_agent_transitions", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  agentId: managedAgentRef(),
  organizationId: organizationRef(),
  fromState: text("from_state"),
  toState: text("to_state").notNull(),
  reason: text("reason"),
  actorType: text("actor_type").notNull(),
  actorId: text("actor_id").notNull(),
  createdAt: createdAt(),
});

export const managedAgentConfigVersions = pgTable(
  "managed_agent_config_versions",
  {
    agentId: managedAgentRef(),
    organizationId: organizationRef(),
    version: integer("version").notNull(),
    config: jsonb("config").$type<Record<string, unknown>>().notNull(),
    authorType: text("author_type").notNull(),
    authorId: text("author_id").notNull(),
    createdAt: createdAt(),
  },
  (table) => [primaryKey({ columns: [table.agentId, table.version] })],
);

export const agentDiscoveryTokens = pgTable("agent_discovery_tokens", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  tokenHash: text("token_hash").notNull(),
  expiresAt: timestampTz("expires_at").notNull(),
  usedAt: timestampTz("used_at"),
  usedByAgentId: text("used_by_agent_id"),
  createdBy: text("created_by"),
  createdAt: createdAt(),
});

export const agentDiscoveryReports = pgTable("agent_discovery_reports", {
  organizationId: text("organization_id")
    .primaryKey()
    .references(() => organizations.id),
  directory: text("directory").notNull(),
  scannedAt: timestampTz("scanned_at").notNull(),
  report: jsonb("report").$type<Record<string, unknown>>().notNull(),
});

export const managedAgentMetrics = pgTable("managed_agent_metrics", {
  agentId: managedAgentRef(),
  organizationId: organizationRef(),
  name: text("name").notNull(),
  value: doublePrecision("value").notNull(),
  recordedAt: timestampTz("recorded_at").notNull(),
});

export const managedAgentLogs = pgTable("managed_agent_logs", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  agentId: managedAgentRef(),
  organizationId: organizationRef(),
  level: text("level").notNull(),
  message: text("message").notNull(),
  context: jsonb("context").$type<Record<string, unknown>>().notNull().default({}),
  loggedAt: timestampTz("logged_at").notNull(),
});

export const agentAlertRules = pgTable("agent_alert_rules", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  name: text("name").notNull(),
  enabled: boolean("enabled").notNull().default(true),
  agentId: text("agent_id").references(() => managedAgents.id),
  kind: text("kind").notNull(),
  metric: text("metric"),
  threshold: doublePrecision("threshold").notNull(),
  windowS: integer("window_s").notNull().default(300),
  notifyExternalAgentId: text("notify_external_agent_id").references(() => externalAgents.id),
  createdBy: text("created_by"),
  createdAt: createdAt(),
});

export const agentAlerts = pgTable("agent_alerts", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  agentId: managedAgentRef(),
  ruleId: text("rule_id").references(() => agentAlertRules.id),
  kind: text("kind").notNull(),
  message: text("message").notNull(),
  details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
  firedAt: timestampTz("fired_at").notNull().defaultNow(),
  resolvedAt: timestampTz("resolved_at"),
});

export type ManagedAgentRow = typeof managedAgents.$inferSelect;
export type ManagedAgentTransitionRow = typeof managedAgentTransitions.$inferSelect;
export type ManagedAgentConfigVersionRow = typeof managedAgentConfigVersions.$inferSelect;
export type AgentAlertRuleRow = typeof agentAlertRules.$inferSelect;
export type AgentAlertRow = typeof agentAlerts.$inferSelect;

/** Raw bytes (a dead-lettered message exactly as it arrived). */
const customBytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

export const jobs = pgTable("jobs", {
  id: text("id").primaryKey(),
  organizationId: organizationRef(),
  traceId: text("trace_id").notNull(),
  name: text("name").notNull(),
  definition: jsonb("definition").$type<Record<string, unknown>>().notNull(),
  input: jsonb("input").$type<unknown>().notNull(),
  status: text("status").notNull().default("queued"),
  result: jsonb("result").$type<unknown>(),
  error: jsonb("error").$type<Record<string, unknown>>(),
  attempts: integer("attempts").notNull().default(0),
  source: text("source").notNull(),
  cancelRequested: boolean("cancel_requested").notNull().default(false),
  leaseUntil: timestampTz("lease_until"),
  createdBy: text("created_by"),
  createdAt: createdAt(),
  startedAt: timestampTz("started_at"),
  finishedAt: timestampTz("finished_at"),
  resultPublishedAt: timestampTz("result_published_at"),
  /** The claim came from the broker's last delivery: see migrations/0012_job_final_delivery.sql. */
  finalDelivery: boolean("final_delivery"),
  updatedAt: timestampTz("updated_at").notNull().defaultNow(),
});

export const jobEvents = pgTable(
  "job_events",
  {
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id),
    seq: integer("seq").notNull(),
    eventType: text("event_type").notNull(),
    data: jsonb("data").$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (table) => [primaryKey({ columns: [table.jobId, table.seq] })],
);

export const jobDeadLetters = pgTable("job_dead_letters", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  subject: text("subject").notNull(),
  raw: customBytea("raw").notNull(),
  headers: jsonb("headers").$type<Record<string, string[]>>().notNull().default({}),
  reason: text("reason").notNull(),
  jobId: text("job_id"),
  deliveries: integer("deliveries").notNull().default(1),
  createdAt: createdAt(),
});

export type JobRow = typeof jobs.$inferSelect;

/** Who does each single background duty now: see src/db/duty-leases.ts. */
export const dutyLeases = pgTable("duty_leases", {
  duty: text("duty").primaryKey(),
  holder: text("holder").notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  acquiredAt: timestamp("acquired_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Agent Cards of A2A agents, newest last: see src/a2a/a2a-import.service.ts. */
export const externalAgentCards = pgTable(
  "external_agent_cards",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    organizationId: organizationRef(),
    agentId: text("agent_id")
      .notNull()
      .references(() => externalAgents.id),
    sourceUrl: text("source_url"),
    card: jsonb("card").$type<Record<string, unknown>>().notNull(),
    fetchedAt: timestamp("fetched_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index("external_agent_cards_agent_idx").on(table.organizationId, table.agentId, table.id)],
);
export type ExternalAgentCardRow = typeof externalAgentCards.$inferSelect;
