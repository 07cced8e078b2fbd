import { Duplex } from "node:stream";
import type { PGlite } from "@electric-sql/pglite";

/** Protocol version 3.0 in a startup message, the only message without a type byte. */
const STARTUP_HEADER_BYTES = 8;

/**
 * Messages after which the client waits for an answer: Sync (ending Parse, Bind, Describe,
 * Execute…), a simple Query, Flush, Terminate, the end or failure of a COPY, a function
 * call and a password. What comes before them is one request.
 */
const REQUEST_ENDS = new Set(["S", "Q", "H", "X", "c", "f", "F", "p"].map((type) => type.charCodeAt(0)));

/** ReadyForQuery ('Z', length 5) ends an answer; its last byte is `I` when no transaction is open. */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);
const IDLE = "I".charCodeAt(0);

/** A simple-protocol `ROLLBACK`, for a connection that ends inside its transaction. */
const ROLLBACK = (() => {
  const text = Buffer.from("ROLLBACK\0");
  const message = Buffer.alloc(5 + text.length);
  message.write("Q", 0);
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
})();

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
  /** Whether this connection's last answer left a transaction open. */
  private inTransaction = false;

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
      const answer = await this.exchange(request);
      if (answer.length === 0) return;
      const ready = answer.length - READY_FOR_QUERY.length - 1;
      if (ready >= 0 && answer.subarray(ready, ready + READY_FOR_QUERY.length).equals(READY_FOR_QUERY))
        this.inTransaction = answer[answer.length - 1] !== IDLE;
      this.push(answer);
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  /**
   * One request's answer. The raw stream call rather than `execProtocolRaw`, which also
   * decodes every answer into a list PGlite only clears in its own `query` and `exec`.
   */
  private async exchange(request: Buffer): Promise<Buffer> {
    const chunks: Buffer[] = [];
    await this.db.runExclusive(() =>
      // Views of PGlite's own memory, which its next call overwrites: copied out.
      this.db.execProtocolRawStream(request, { onRawData: (data) => chunks.push(Buffer.from(data)) }),
    );
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }

  /** Once the requests written so far are answered, rolls back the transaction it left open. */
  private close(): Promise<void> {
    this.rolledBack ??= this.requests.then(async () => {
      if (this.inTransaction) await this.exchange(ROLLBACK);
    });
    return this.rolledBack;
  }
}
