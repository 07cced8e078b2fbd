import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

/** Where `npm run build` puts the dashboard (web/ → dist/web), from src/ and from dist/ alike. */
export const DASHBOARD_DIR = new URL("../../dist/web", import.meta.url).pathname;

/** Paths that belong to the server, never to the dashboard's client-side routes. */
const SERVER_PATHS = /^\/(api|docs|openapi\.json|health|ready|metrics)(\/|$)/;

/**
 * The dashboard's scripts and styles come only from Steward itself; it talks to the API
 * on the same origin (fetch and WebSocket), and charts are inline SVG. It may not be framed.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  // React sets `style` through the CSSOM, which style-src does not govern: no inline styles needed.
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

/**
 * Serves the built dashboard at `/`: its files (hashed assets cached for good), and
 * index.html for any other GET outside the server's own paths, so a reload on a
 * client-side route like /agents/ag_123 opens that page. Answers false when the
 * dashboard was not built.
 */
export async function registerDashboard(app: FastifyInstance, dir = DASHBOARD_DIR): Promise<boolean> {
  if (!existsSync(join(dir, "index.html"))) return false;
  await app.register(fastifyStatic, {
    root: dir,
    wildcard: false,
    index: false,
    setHeaders(reply, path) {
      reply.header(
        "cache-control",
        path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      );
      // index.html is reachable by its own name too: it must not lose the page's protections.
      withPageHeaders(reply, path.endsWith(".html"));
    },
  });
  const sendApp = (reply: FastifyReply) => reply.sendFile("index.html");
  app.get("/", { schema: { hide: true } }, (_request, reply) => sendApp(reply));
  app.get("/*", { schema: { hide: true } }, (request, reply) => {
    const path = request.url.split("?")[0] ?? "/";
    if (SERVER_PATHS.test(path) || /\/[^/]+\.[a-z0-9]+$/i.test(path)) return reply.callNotFound();
    return sendApp(reply);
  });
  return true;
}

function withPageHeaders(reply: FastifyReply, html: boolean): void {
  reply.header("x-content-type-options", "nosniff").header("referrer-policy", "no-referrer");
  if (html) reply.header("content-security-policy", CONTENT_SECURITY_POLICY);
}
