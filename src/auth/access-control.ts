import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RequestContext } from "../audit/audit.js";
import { AppError, NotFoundError } from "../errors.js";
import { type AnyPermission, authorize, type Principal } from "./permissions.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The permission a route requires; API routes without one are refused (fail closed). */
    permission?: AnyPermission;
    /** A WebSocket route a browser opens: it may carry its credential as `?access_token=`. */
    queryCredential?: boolean;
  }
  interface FastifyRequest {
    principal: Principal;
    /**
     * Whether the request's credential still stands for the same principal with the route's
     * permission: for connections that outlive the request (WebSockets), checked again later.
     */
    credentialStillValid: () => Promise<boolean>;
  }
}

/** Resolves a presented credential to a principal, or null when it is not valid. */
export type Authenticate = (credential: string) => Promise<Principal | null>;

function presentedCredential(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1];
  }
  const apiKey = request.headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey.length > 0) return apiKey;
  // Browsers cannot set headers on a WebSocket handshake; only there is a query token accepted.
  if (request.routeOptions.config.queryCredential === true) {
    const token = (request.query as { access_token?: unknown }).access_token;
    return typeof token === "string" && token.length > 0 ? token : undefined;
  }
  return undefined;
}

/** The routes a managed agent's own token reaches: those of one agent, which must be itself. */
const OWN_AGENT_ROUTE = "/api/v1/agents/:id";

function confineToOwnAgent(request: FastifyRequest, agentId: string): void {
  const route = request.routeOptions.url ?? "";
  if (route !== OWN_AGENT_ROUTE && !route.startsWith(`${OWN_AGENT_ROUTE}/`))
    throw new AppError("FORBIDDEN", "Forbidden: a managed agent may only act on itself");
  const requested = (request.params as { id?: string }).id ?? "";
  // Another agent's id answers as if it did not exist: an agent learns nothing of its peers.
  if (requested !== agentId) throw new NotFoundError("agent", requested);
}

/**
 * Authenticates every request of the enclosing plugin and checks the permission its
 * route declares, before the body is read: an unauthenticated caller cannot make
 * Steward parse a large body.
 */
export function registerAccessControl(app: FastifyInstance, authenticate: Authenticate): void {
  app.decorateRequest("principal", null as unknown as Principal);
  app.decorateRequest("credentialStillValid", null as unknown as () => Promise<boolean>);
  app.addHook("onRequest", async (request, reply) => {
    const credential = presentedCredential(request);
    if (!credential) {
      reply.header("www-authenticate", "Bearer");
      throw new AppError(
        "UNAUTHORIZED",
        "Authentication required: send Authorization: Bearer <key> or X-API-Key",
      );
    }
    const principal = await authenticate(credential);
    if (!principal) {
      reply.header("www-authenticate", 'Bearer error="invalid_token"');
      throw new AppError("UNAUTHORIZED", "Invalid, expired or revoked credential");
    }
    request.principal = principal;
    const permission = request.routeOptions.config.permission;
    if (!permission) {
      request.log.error({ url: request.routeOptions.url }, "route declares no permission; refusing");
      throw new AppError("FORBIDDEN", "This route is not available");
    }
    const decision = authorize(principal, permission);
    if (!decision.allowed) throw new AppError("FORBIDDEN", `Forbidden: ${decision.reason}`);
    request.credentialStillValid = async () => {
      const now = await authenticate(credential);
      return now !== null && now.id === principal.id && authorize(now, permission).allowed;
    };
    if (principal.agentId !== undefined) confineToOwnAgent(request, principal.agentId);
  });
}

/** The actor and request id that service calls record in audit events. */
export function requestContext(request: FastifyRequest): RequestContext {
  return { actor: { type: request.principal.type, id: request.principal.id }, requestId: String(request.id) };
}

/**
 * The organization a request acts on: the caller's own, or — for platform admins
 * only — the one named by `organization_id`.
 */
export function targetOrganization(
  request: FastifyRequest,
  requested: string | undefined,
  permission: AnyPermission,
): string {
  const principal = request.principal;
  if (requested === undefined || requested === principal.organizationId) return principal.organizationId;
  if (!authorize(principal, permission, requested).allowed) {
    throw new AppError("FORBIDDEN", "Only a platform admin may act on another organization");
  }
  return requested;
}
