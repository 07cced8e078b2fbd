import { ADAPTERS } from "../delivery/adapters/registry.js";
import type { Platform } from "./agent-kinds.js";
import type { ConfigSpec } from "./config-schema.js";

/**
 * Where an agent's results are delivered: one config schema per platform. Each is
 * declared by its platform's adapter (src/delivery/adapters/), next to the code that
 * reads it.
 */
// ADAPTERS has exactly one entry per Platform, which Object.fromEntries cannot know.
export const PLATFORM_CONFIG_SPECS = Object.fromEntries(
  Object.entries(ADAPTERS).map(([platform, adapter]) => [platform, adapter.configSpec]),
) as Record<Platform, ConfigSpec>;
