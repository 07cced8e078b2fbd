import { Duplex } from "node:stream";
import type { PGlite } from "@electric-sql/pglite";

/** Protocol version 3.0 in a startup message, the only message without a type byte. */
const STARTUP_HEADER_BYTES = 8;

/**
 * Messages after which the client waits for an answer: Sync (ending Parse, Bind, Describe,
 * Execute…), a simple Query, Flush and Terminate. What comes before them is one request.
 */
const REQUEST_ENDS = new Set(["S", "Q", "H", "X"].map((type) => type.charCodeAt(0)));

/**
 * A connection of the `pg` driver to PGlite in this process, in place of a socket: what
 * the driver writes is handed to PGlite's wire-protocol entry one whole request at a
 * time (Parse, Bind, Describe, Execute and Sync in one call rather than five), and the
 * answer is read back, with no system call on the way.
 *
 * PGlite is one session. Requests of all connections take turns; Steward's pool keeps one
 * connection in use, so transactions never interleave, and a connection that closes in
 * the middle of one has it rolled back.
 */
export class PGliteConnection extends Duplex {
  private unsent: Buffer = Buffer.alloc(0);
  private startedUp = false;
  /** Requests go to PGlite one after another, in the order written. */
  private requests: Promise<void> = Promise.resolve();
  private rolledBack?: Promise<void>;

  constructor(private readonly db: PGlite) {
    super();
  }

  // What the driver asks of a socket.
  connect(): this {
    queueMicrotask(() => this.emit("connect"));
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  override _read(): void {
    // Answers are pushed as PGlite gives them.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, written: (error?: Error | null) => void): void {
    this.unsent = this.unsent.length === 0 ? chunk : Buffer.concat([this.unsent, chunk]);
    const end = this.completeRequestsEnd();
    if (end > 0) {
      const request = this.unsent.subarray(0, end);
      this.unsent = this.unsent.subarray(end);
      this.requests = this.requests.then(() => this.answer(request));
    }
    written();
  }

  override _final(finished: (error?: Error | null) => void): void {
    this.close().then(() => {
      this.push(null);
      finished();
    }, finished);
  }

  override _destroy(error: Error | null, destroyed: (error?: Error | null) => void): void {
    this.close().then(
      () => destroyed(error),
      (closing: unknown) => destroyed(error ?? (closing as Error)),
    );
  }

  /** Where the last whole request in what was written ends; 0 while none is whole yet. */
  private completeRequestsEnd(): number {
    const data = this.unsent;
    let offset = 0;
    let end = 0;
    if (!this.startedUp) {
      if (data.length < STARTUP_HEADER_BYTES) return 0;
      const length = data.readInt32BE(0);
      if (data.length < length) return 0;
      this.startedUp = true;
      offset = end = length;
    }
    while (data.length - offset >= 5) {
      const type = data[offset] as number;
      const next = offset + 1 + data.readInt32BE(offset + 1);
      if (next > data.length) break;
      offset = next;
      if (REQUEST_ENDS.has(type)) end = offset;
    }
    return end;
  }

  private async answer(request: Buffer): Promise<void> {
    if (this.destroyed) return;
    try {
      const answer = await this.db.runExclusive(() => this.db.execProtocolRaw(request));
      // A view of PGlite's own memory, which its next call overwrites: copied out.
      if (answer.length > 0) this.push(Buffer.from(answer));
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  /** Once the requests written so far are answered, rolls back a transaction left open. */
  private close(): Promise<void> {
    this.rolledBack ??= this.requests.then(async () => {
      if (this.db.isInTransaction()) await this.db.exec("ROLLBACK");
    });
    return this.rolledBack;
  }
}
