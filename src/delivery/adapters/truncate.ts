export const ELLIPSIS = "…";

const asIs = (char: string) => char;

/**
 * `text` as it is sent (after `escapeChar`, applied per character), at most `max` UTF-16
 * code units long; cut text ends with "…". Lengths are UTF-16 units because that is
 * what the strictest platform counts (Telegram) and never less than the code points
 * the others count. Cuts fall between code points, so no surrogate pair is split, and
 * between escapes, so no half escape ("\\" or "&am") is left before the ellipsis.
 */
export function truncate(text: string, max: number, escapeChar: (char: string) => string = asIs): string {
  let sent = "";
  let fitsWithEllipsis = "";
  for (const char of text) {
    const piece = escapeChar(char);
    if (sent.length + piece.length > max) return fitsWithEllipsis + ELLIPSIS;
    sent += piece;
    if (sent.length <= max - ELLIPSIS.length) fitsWithEllipsis = sent;
  }
  return sent;
}
