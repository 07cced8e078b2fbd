import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { externalAgentRoutes } from "./agents/agent.routes.js";
import { ExternalAgentService } from "./agents/agent.service.js";
import { registerAccessControl } from "./auth/access-control.js";
import { apiKeyRoutes } from "./auth/api-key.routes.js";
import { ApiKeyService } from "./auth/api-key.service.js";
import { createAuthenticator } from "./auth/authenticator.js";
import { ensureAdminAccess } from "./auth/bootstrap.js";
import { createJwtAuthenticator } from "./auth/jwt.js";
import type { Config } from "./config.js";
import { createSecretBox } from "./crypto/key-ring.js";
import { type Database, openDatabase } from "./db/database.js";
import { runMigrations } from "./db/migrate.js";
import { createHttpServer } from "./http/server.js";
import { healthRoutes } from "./observability/health.routes.js";
import { organizationRoutes } from "./orgs/organization.routes.js";
import { DEFAULT_ORGANIZATION_ID, OrganizationService } from "./orgs/organization.service.js";
import { STEWARD_VERSION } from "./version.js";

export interface Steward {
  server: FastifyInstance;
  database: Database;
  /** Set on a first start without any key: the admin key to show once. */
  firstAdminKey?: string;
  close(): Promise<void>;
}

/**
 * The composition root: builds every store, service and route from the config. The
 * only place that decides which implementation of a backing service is used.
 */
export async function createSteward(config: Config, logger: Logger): Promise<Steward> {
  const database = await openDatabase(config.database, logger);
  try {
    const migrations = await runMigrations(database.pool, database.schema);
    if (migrations.applied.length > 0) logger.info({ applied: migrations.applied }, "database migrated");

    const secretBox = await createSecretBox(config, logger);
    const organizations = new OrganizationService(database.db);
    const apiKeys = new ApiKeyService(database.db);
    const agents = new ExternalAgentService(database.db, secretBox);

    await organizations.ensureDefault();
    const { firstAdminKey } = await ensureAdminAccess(
      apiKeys,
      config.bootstrapAdminKey,
      DEFAULT_ORGANIZATION_ID,
      logger,
    );

    const verifyJwt = config.jwt
      ? createJwtAuthenticator(config.jwt, async (claim) => (await organizations.findByIdOrName(claim))?.id)
      : undefined;
    const authenticate = createAuthenticator(apiKeys, verifyJwt);

    const server = await createHttpServer({
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
      version: STEWARD_VERSION,
    });
    await server.register(healthRoutes(database));
    await server.register(
      async (api) => {
        registerAccessControl(api, authenticate);
        await api.register(organizationRoutes(organizations));
        await api.register(apiKeyRoutes(apiKeys, organizations));
        await api.register(externalAgentRoutes(agents));
      },
      { prefix: "/api/v1" },
    );
    await server.ready();

    return {
      server,
      database,
      firstAdminKey,
      async close() {
        await server.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
