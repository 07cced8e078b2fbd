/** Rules for the headers an agent's settings add to the requests Steward sends. */

/** Headers that frame the request; undici refuses some, and none is a credential or a setting. */
export const FRAMING_HEADERS = new Set([
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** What HTTP allows in a field value (RFC 9110 §5.5), as Node and undici check it: no line breaks. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Why `value` cannot be sent as a header value, in words that never quote it; undefined when it can. */
export function headerValueProblem(value: string): string | undefined {
  return FIELD_VALUE.test(value)
    ? undefined
    : "must be one line of text without control characters or characters beyond U+00FF";
}

/**
 * The problems of configured headers, by field (`<path>.<name>`): a framing header Steward
 * sets itself, or a value HTTP cannot carry.
 */
export function configuredHeaderProblems(
  headers: Readonly<Record<string, string>>,
  path: string,
): Array<{ field: string; message: string }> {
  return Object.entries(headers).flatMap(([name, value]) => {
    const field = `${path}.${name}`;
    if (FRAMING_HEADERS.has(name.toLowerCase())) return [{ field, message: "is set by Steward itself" }];
    const problem = headerValueProblem(value);
    return problem === undefined ? [] : [{ field, message: problem }];
  });
}
