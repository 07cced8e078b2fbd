/**
 * Payment-card numbers in free text. A candidate is 13 to 19 digits, written whole or
 * in groups separated by one space or dash ("4111 1111 1111 1111", "3782-822463-10005"),
 * that starts with 2–6 and passes the Luhn check.
 */

export interface Span {
  start: number;
  end: number;
}

const DIGITS = /\d+/g;
/** What may stand between two groups of one number: one space or dash. */
const SEPARATORS = new Set([" ", "-"]);

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;
/**
 * Printed card groups are three digits or more; refusing shorter ones keeps lists of
 * small numbers ("1 2 3 4 …") from being read as one long number.
 */
const MIN_GROUP_DIGITS = 3;
/** No number can span more groups than this, which keeps the scan linear in the run's length. */
const MAX_GROUPS = Math.floor(MAX_DIGITS / MIN_GROUP_DIGITS);
/**
 * ISO/IEC 7812 major industry identifiers 2–6 cover Mastercard, Amex, Diners, JCB,
 * Visa, Discover, UnionPay and Maestro. Leaving out 0, 1 and 7–9 skips millisecond
 * timestamps and most order ids, which would otherwise pass Luhn one time in ten.
 */
const CARD_FIRST_DIGIT = /^[2-6]/;

/** The Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

interface Group {
  start: number;
  digits: string;
}

/**
 * Card numbers in `text`. Every digit group is tried as the start of a number, with
 * the longest valid run of whole groups after it, so a card glued to other numbers
 * ("qty 12 4111 1111 1111 1111") is still found. Only the last few groups are held,
 * so long digit runs cost linear time and constant memory. Spans may overlap; the
 * caller merges them.
 */
export function findCardNumbers(text: string): Span[] {
  const spans: Span[] = [];
  let pending: Group[] = [];
  const flush = (count: number) => {
    for (let i = 0; i < count; i++) {
      const span = longestCard(pending.slice(i, i + MAX_GROUPS));
      if (span) spans.push(span);
    }
    pending = pending.slice(count);
  };
  let previousEnd = 0;
  for (const match of text.matchAll(DIGITS)) {
    const group = { start: match.index, digits: match[0] };
    const joined =
      pending.length > 0 && group.start === previousEnd + 1 && SEPARATORS.has(text[previousEnd] ?? "");
    if (!joined) flush(pending.length);
    pending.push(group);
    // A start's candidates reach at most MAX_GROUPS groups, so it can be decided once
    // that many have been seen.
    if (pending.length > MAX_GROUPS) flush(pending.length - MAX_GROUPS);
    previousEnd = group.start + group.digits.length;
  }
  flush(pending.length);
  return spans;
}

/** The longest valid number made of `groups[0]` and the groups after it, if any. */
function longestCard(groups: readonly Group[]): Span | null {
  let digits = "";
  let found: Span | null = null;
  for (const group of groups) {
    if (group.digits.length < MIN_GROUP_DIGITS) break;
    digits += group.digits;
    if (digits.length > MAX_DIGITS) break;
    if (digits.length >= MIN_DIGITS && CARD_FIRST_DIGIT.test(digits) && luhnValid(digits)) {
      found = { start: (groups[0] as Group).start, end: group.start + group.digits.length };
    }
  }
  return found;
}
