import type { Dispatcher } from "undici";

/** Reading the answers of outbound HTTP calls, and naming their transport failures. */

/** An answer longer than the configured cap; reading stopped at the cap. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`response larger than ${limitBytes} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/**
 * The body of `response`, at most `maxBytes` long. A longer one is refused as soon as
 * its Content-Length or its running total says so, and the stream is destroyed, so a
 * hostile endpoint cannot make Steward buffer gigabytes.
 */
export async function readCappedBody(response: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers["content-length"]);
  if (declared > maxBytes) {
    response.body.destroy();
    throw new ResponseTooLargeError(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > maxBytes) {
      response.body.destroy();
      throw new ResponseTooLargeError(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parsed JSON when the content type says JSON and it parses, the text otherwise, undefined when empty. */
export function decodeBody(bytes: Buffer, contentType: string | string[] | undefined): unknown {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString("utf8");
  const mediaType = (Array.isArray(contentType) ? contentType[0] : contentType)
    ?.split(";")[0]
    ?.trim()
    .toLowerCase();
  if (mediaType === "application/json" || mediaType?.endsWith("+json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * A short, credential-free name for a failed exchange: the error's code (ECONNREFUSED,
 * UND_ERR_SOCKET…) or its class name. Messages are left out on purpose: they can quote
 * URLs, and delivery URLs are secrets.
 */
/** undici errors that mean the request itself is malformed: sending it again changes nothing. */
const REQUEST_BUILD_ERRORS = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED"]);

/** Whether a transport error code says the request could not be built (Node's own ERR_… too). */
export function isUnsendableRequest(code: string): boolean {
  return REQUEST_BUILD_ERRORS.has(code) || code.startsWith("ERR_");
}

export function transportErrorCode(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const { code } = error as { code?: unknown };
    if (typeof code === "string" && code !== "") return code;
    if (error instanceof Error) return error.name;
  }
  return "unknown error";
}
