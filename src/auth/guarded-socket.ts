import type { WebSocket } from "@fastify/websocket";
import type { FastifyRequest } from "fastify";

/** How often an idle socket's credential is checked again. */
const RECHECK_IDLE_MS = 5_000;
/** The close code (in the 4000s applications use) for a credential revoked or expired mid-connection. */
export const CREDENTIAL_GONE = 4401;

/**
 * Holds a WebSocket to what its credential still allows. The credential is checked again
 * before each message goes out (verified API keys are cached, so this is cheap) and every
 * few seconds while the socket is idle; once it is revoked, expired or no longer carries
 * the route's permission, the socket closes with 4401 and nothing more is sent.
 */
export class GuardedSocket {
  /** Sends go out one after another, in the order they were asked for. */
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: WebSocket,
    private readonly request: FastifyRequest,
  ) {
    this.timer = setInterval(() => void this.allowed(), RECHECK_IDLE_MS);
    socket.on("close", () => clearInterval(this.timer));
  }

  /** Sends `message`, after those asked for before it, if the socket is open and its credential still stands. */
  send(message: string): Promise<void> {
    this.sending = this.sending.then(async () => {
      if (await this.allowed()) this.socket.send(message);
    });
    return this.sending;
  }

  /** Resolves once every message asked for so far went out (or was withheld). */
  sent(): Promise<void> {
    return this.sending;
  }

  /** Whether messages may still go out; closes the socket the first time they may not. */
  async allowed(): Promise<boolean> {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    let valid: boolean;
    try {
      valid = await this.request.credentialStillValid();
    } catch (error) {
      // The credential store could not answer: nothing more goes out on an unchecked credential.
      this.request.log.warn({ err: error }, "WebSocket credential could not be checked again");
      valid = false;
    }
    if (!valid) {
      this.socket.close(CREDENTIAL_GONE, "credential revoked or expired");
      return false;
    }
    return this.socket.readyState === this.socket.OPEN;
  }
}
