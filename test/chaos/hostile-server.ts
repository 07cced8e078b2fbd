import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Hostile HTTP peers on 127.0.0.1 for chaos tests — an agent or a chat platform that
 * answers 500, never answers, trickles, sends an endless body or redirects elsewhere —
 * and a canary that counts every connection made to it.
 */

export type HostileHandler = (request: IncomingMessage, response: ServerResponse) => void;

export interface HostileServer {
  url: string;
  /** Responses whose connection the client has not closed yet. */
  openResponses(): number;
  close(): Promise<void>;
}

const FIVE_GB = 5 * 1024 ** 3;
const ZEROS = Buffer.alloc(64 * 1024);

/** Answers 500 with a JSON message that echoes the request path (where a platform URL keeps its token). */
export const answer500: HostileHandler = (request, response) => {
  response.writeHead(500, { "content-type": "application/json" });
  response.end(JSON.stringify({ message: `no route for ${request.url}` }));
};

/** Takes the request and never answers: the connection stays open until the client gives up. */
export const neverAnswer: HostileHandler = () => {};

/** Sends the headers and a first byte at once, then one byte a second, never ending. */
export const trickleOneBytePerSecond: HostileHandler = (_request, response) => {
  response.writeHead(200, { "content-type": "application/json" });
  response.write("[");
  const timer = setInterval(() => response.write(" "), 1_000);
  response.on("close", () => clearInterval(timer));
};

/**
 * Streams zeros for as long as the client reads, 5 GB announced by Content-Length or sent
 * chunked with no length at all. Writes wait for the socket to drain, so nothing is
 * buffered here: the body only grows as fast as the client takes it.
 */
export function endlessBody(announced: boolean): HostileHandler {
  return (_request, response) => {
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      ...(announced ? { "content-length": String(FIVE_GB) } : {}),
    });
    const pump = () => {
      let drained = true;
      while (drained && !response.destroyed) drained = response.write(ZEROS);
      if (!response.destroyed) response.once("drain", pump);
    };
    pump();
  };
}

/** Redirects (302, 307…) to `target` followed by the request's own path. */
export function redirectTo(status: number, target: string): HostileHandler {
  return (request, response) => {
    response.writeHead(status, { location: `${target}${request.url}` });
    response.end();
  };
}

export async function startHostileServer(handler: HostileHandler): Promise<HostileServer> {
  let open = 0;
  const server = createServer((request, response) => {
    open += 1;
    response.on("close", () => (open -= 1));
    request.resume();
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    openResponses: () => open,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface CanaryServer {
  port: number;
  url: string;
  /** TCP connections made to it: any at all means something got through. */
  connections(): number;
  /** The path of every request it received. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * A server nobody may reach. It listens on every local address, IPv6 and IPv4, so a
 * connection to 127.0.0.1, ::1, 0.0.0.0 or any other local form of its port is counted;
 * where IPv6 is off, on every IPv4 address.
 */
export async function startCanaryServer(): Promise<CanaryServer> {
  let connections = 0;
  const paths: string[] = [];
  const server = createServer((request, response) => {
    paths.push(request.url ?? "");
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ result: "canary reached" }));
  });
  server.on("connection", () => (connections += 1));
  await listen(server, "::").catch(() => listen(server, "0.0.0.0"));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    paths,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Listens on a free port of `host`, or fails with the listen error (e.g. no IPv6). */
function listen(server: Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
