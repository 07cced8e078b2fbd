/**
 * The platform the delivery run delivers to: a minimal Node HTTP server that answers each
 * POST with 200 "ok" and records its `X-Steward-Delivery-Id`, its `webhook-id` (the
 * invocation, for custom_http deliveries) and when it arrived. `GET /deliveries` answers
 * what it recorded; `GET /deliveries/count` how many. Listens on 127.0.0.1:$PORT.
 */
import { createServer, type IncomingMessage } from "node:http";

/** [delivery id, invocation id, arrival in ms since the epoch with sub-ms precision] */
type Arrival = [string, string, number];

const arrivals: Arrival[] = [];

/** Wall-clock time at sub-millisecond resolution, comparable across processes on one machine. */
const now = () => performance.timeOrigin + performance.now();

function header(request: IncomingMessage, name: string): string {
  const value = request.headers[name];
  return typeof value === "string" ? value : "";
}

createServer((request, response) => {
  if (request.method === "GET") {
    const body =
      request.url === "/deliveries"
        ? JSON.stringify(arrivals)
        : request.url === "/deliveries/count"
          ? String(arrivals.length)
          : "ok";
    response.writeHead(200, { "content-type": "application/json" });
    response.end(body);
    return;
  }
  request.resume();
  request.on("end", () => {
    arrivals.push([header(request, "x-steward-delivery-id"), header(request, "webhook-id"), now()]);
    response.writeHead(200, { "content-type": "text/plain", "content-length": 2 });
    response.end("ok");
  });
}).listen(Number(process.env.PORT), "127.0.0.1");
