import { findSensitiveData, SENSITIVE_KIND_NAMES } from "./sensitive-data.js";

const ELLIPSIS = "…";

/**
 * The input as approvers see it: every sensitive match masked by its name in brackets
 * ("[card number]"), then cut to at most `maxLength` UTF-16 units ending in "…".
 * Masking comes first so a cut can never leave the readable half of a number the
 * detectors would have caught whole.
 */
export function redactSummary(input: string, maxLength = 500): string {
  if (!Number.isInteger(maxLength) || maxLength < 1)
    throw new RangeError("maxLength must be a positive integer");
  let masked = "";
  let from = 0;
  for (const match of findSensitiveData(input)) {
    masked += `${input.slice(from, match.start)}[${SENSITIVE_KIND_NAMES[match.kind]}]`;
    from = match.end;
  }
  masked += input.slice(from);
  if (masked.length <= maxLength) return masked;
  let cut = masked.slice(0, maxLength - ELLIPSIS.length);
  // Never end on half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + ELLIPSIS;
}
