import type { WebSocket } from "@fastify/websocket";
import type { FastifyRequest } from "fastify";

/** How often the credential of a socket is checked again, while idle and between messages. */
const RECHECK_MS = 5_000;
/** Checks in a row the credential store may fail to answer (a database blip) before the socket closes. */
const UNANSWERED_CHECKS_TOLERATED = 3;
/** The close code (in the 4000s applications use) for a credential revoked or expired mid-connection. */
const CREDENTIAL_GONE = 4401;

export interface GuardOptions {
  /**
   * Checks before every message instead of at most every 5 s: for sockets whose messages
   * can carry secrets (an agent's config), which are few.
   */
  everyMessage?: boolean;
}

/**
 * Holds a WebSocket to what its credential still allows. The credential is checked again
 * every 5 s, while idle too, and before a message goes out once that long has passed (or
 * before every message, with `everyMessage`); once it is revoked, expired or no longer
 * carries the route's permission, the socket closes with 4401 and nothing more is sent.
 */
export class GuardedSocket {
  /** Sends go out one after another, in the order they were asked for. */
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private checkedAt = 0;
  private unanswered = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly request: FastifyRequest,
    private readonly options: GuardOptions = {},
  ) {
    this.timer = setInterval(() => void this.check(), RECHECK_MS);
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
  private async allowed(): Promise<boolean> {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    const fresh = !this.options.everyMessage && Date.now() - this.checkedAt < RECHECK_MS;
    return fresh || this.check();
  }

  private async check(): Promise<boolean> {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    let valid: boolean;
    try {
      valid = await this.request.credentialStillValid();
      this.unanswered = 0;
    } catch (error) {
      this.unanswered += 1;
      this.request.log.warn({ err: error }, "WebSocket credential could not be checked again");
      // Nothing goes out on an unchecked credential; the socket closes if the store stays away.
      if (this.unanswered < UNANSWERED_CHECKS_TOLERATED) return false;
      valid = false;
    }
    if (!valid) {
      this.socket.close(CREDENTIAL_GONE, "credential revoked or expired");
      return false;
    }
    this.checkedAt = Date.now();
    return this.socket.readyState === this.socket.OPEN;
  }
}
