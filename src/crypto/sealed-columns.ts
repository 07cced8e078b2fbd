import { isSealedSecret, secretContext } from "../agents/credentials.js";

/**
 * Every place the database holds a value sealed by SecretBox, and the associated data
 * each was sealed with. `steward keys rotate` re-seals what is listed here, so a new
 * column that stores a sealed value must be added here too (the rotation test scans
 * every column of every table for values left on the old key).
 *
 * Not listed, because they hold no sealed value: audit details (names and field lists
 * only), managed agents' config versions, jobs, deliveries and invocations.
 */

/**
 * Where one sealed value sits inside a column value, and the context it was sealed
 * under; or, for something no Steward code stores, why it cannot be re-sealed.
 */
export type SealedSlot =
  /** `keys`: JSON keys from the column value down to the `{ $sealed, hint }` object; empty when the column is that object. */
  { keys: string[]; context: string } | { keys: string[]; problem: string };

export interface SealedColumn {
  name: string;
  /** The sealed values that `value`, stored in the row `rowId`, holds. */
  slots(rowId: string, value: unknown): SealedSlot[];
}

export interface SealedTable {
  name: string;
  /** A text primary key: rows are visited in its order. */
  idColumn: string;
  /** What a row is in the audit log, where each re-sealed row is recorded. */
  resourceType: string;
  columns: readonly SealedColumn[];
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sealed values below `value` (inside objects or arrays), which no Steward code puts there. */
function strays(value: unknown, keys: string[]): SealedSlot[] {
  if (isSealedSecret(value)) return [{ keys, problem: "a sealed value where Steward never stores one" }];
  if (Array.isArray(value)) return value.flatMap((item, index) => strays(item, [...keys, String(index)]));
  if (isObject(value)) return Object.entries(value).flatMap(([key, item]) => strays(item, [...keys, key]));
  return [];
}

/**
 * An agent's `auth_config` or `platform_config` (src/agents/credentials.ts): sealed
 * values at a top-level key ("token") or one map below ("headers.X-Token"), sealed
 * under `<agent id>/<column>/<path>`. Found by shape rather than by the auth type's or
 * platform's secret paths, so a value sealed under an older schema is re-sealed too.
 */
function agentConfigColumn(section: string): SealedColumn {
  return {
    name: section,
    slots(agentId, value) {
      if (!isObject(value)) return [];
      const slots: SealedSlot[] = [];
      for (const [key, item] of Object.entries(value)) {
        if (isSealedSecret(item)) {
          slots.push({ keys: [key], context: secretContext(agentId, section, key) });
        } else if (isObject(item)) {
          for (const [inner, leaf] of Object.entries(item)) {
            if (isSealedSecret(leaf)) {
              slots.push({ keys: [key, inner], context: secretContext(agentId, section, `${key}.${inner}`) });
            } else slots.push(...strays(leaf, [key, inner]));
          }
        } else slots.push(...strays(item, [key]));
      }
      return slots;
    },
  };
}

/**
 * A webhook subscription's `secret` or `previous_secret`
 * (src/delivery/webhooks/webhook-secret.ts): the column is the sealed object, and both
 * columns are sealed under `<subscription id>/webhook_subscription/secret`, so a
 * signing-secret rotation moves the sealed value between them as it is.
 */
function webhookSecretColumn(name: string): SealedColumn {
  return {
    name,
    slots(subscriptionId, value) {
      if (value === null || value === undefined) return [];
      const context = secretContext(subscriptionId, "webhook_subscription", "secret");
      return [isSealedSecret(value) ? { keys: [], context } : { keys: [], problem: "not a sealed value" }];
    },
  };
}

export const SEALED_TABLES: readonly SealedTable[] = [
  {
    name: "external_agents",
    idColumn: "id",
    resourceType: "external_agent",
    columns: [agentConfigColumn("auth_config"), agentConfigColumn("platform_config")],
  },
  {
    name: "webhook_subscriptions",
    idColumn: "id",
    resourceType: "webhook_subscription",
    columns: [webhookSecretColumn("secret"), webhookSecretColumn("previous_secret")],
  },
];
