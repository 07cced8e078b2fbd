import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 in front of a real service (Redis, say), to stage outages
 * without touching the service itself: `stop` is the service going away (connections
 * reset, new ones refused), `pause` is it going silent on open connections (a network
 * partition), `start` brings it back on the same port.
 */

/** A port nothing listens on: one the kernel just handed out and we closed again. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private paused = false;

  private constructor(
    /** The port the proxy listens on, on 127.0.0.1; it stays the same across stop and start. */
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** A started proxy to `target` (e.g. `redis://127.0.0.1:6379`: only host and port are used). */
  static async open(target: string, defaultPort = 6379): Promise<TcpProxy> {
    const url = new URL(target);
    const proxy = new TcpProxy(await closedPort(), {
      host: url.hostname,
      port: Number(url.port || defaultPort),
    });
    await proxy.start();
    return proxy;
  }

  /** `target` with the proxy's host and port instead of the service's: what the client under test is given. */
  urlFor(target: string): string {
    const url = new URL(target);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.href.replace(/\/$/, "");
  }

  /** Connections currently open through the proxy, both sides counted. */
  get openSockets(): number {
    return this.sockets.size;
  }

  /** Listens (again) on the proxy's port and relays every connection to the service. */
  async start(): Promise<void> {
    if (this.server) return;
    this.paused = false;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
        if (this.paused) socket.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** The service goes away: open connections are reset and new ones refused. Safe to call twice. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** The service stops answering but keeps its connections open, as across a network partition. */
  pause(): void {
    this.paused = true;
    for (const socket of this.sockets) socket.pause();
  }
}
