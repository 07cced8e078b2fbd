import type { IncomingHttpHeaders, IncomingMessage } from "node:http";

/** A request a local stand-in server received, body read whole. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  /** The body parsed as JSON when it is a JSON object; `{}` otherwise (rawBody still has it). */
  body: Record<string, unknown>;
}

/** Reads an incoming request to its end. */
export function readRequest(incoming: IncomingMessage): Promise<ReceivedRequest> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("error", reject);
    incoming.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      let body: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(rawBody);
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
          body = parsed as Record<string, unknown>;
      } catch {
        // Not JSON: the test reads rawBody.
      }
      resolve({
        method: incoming.method ?? "",
        path: incoming.url ?? "",
        headers: incoming.headers,
        rawBody,
        body,
      });
    });
  });
}
