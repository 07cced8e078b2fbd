import { sql } from "drizzle-orm";
import { boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

/**
 * Drizzle mirror of migrations/*.sql, used for typed queries. The SQL files are the
 * source of truth: change them first, then this file.
 */

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const organizations = pgTable("organizations", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique("organizations_name_key"),
  createdAt: createdAt(),
});

export const users = pgTable("users", {
  id: text("id").primaryKey(),
  organizationId: text("organization_id")
    .notNull()
    .references(() => organizations.id),
  email: text("email").notNull(),
  name: text("name"),
  createdAt: createdAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id),
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
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id),
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
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id),
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
