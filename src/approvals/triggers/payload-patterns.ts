/**
 * Payload patterns: an organization's own regular expressions over a call's input.
 * They are JavaScript regular expressions, compiled case-insensitive and in Unicode
 * mode ("iu"). The same compiler serves configuration checks and evaluation, so a
 * pattern that was refused when saved is never run.
 */

export const MAX_PATTERN_LENGTH = 200;

export type CompiledPattern = { regex: RegExp } | { error: string };

/** Enough for every pattern of a large organization; bounds memory if patterns churn. */
const CACHE_LIMIT = 1000;
const cache = new Map<string, CompiledPattern>();

/** The pattern compiled, or why it may not be used; cached by pattern text. */
export function compilePayloadPattern(pattern: string): CompiledPattern {
  const hit = cache.get(pattern);
  if (hit) {
    // Re-inserting keeps the Map in least-recently-used order for eviction.
    cache.delete(pattern);
    cache.set(pattern, hit);
    return hit;
  }
  const compiled = compile(pattern);
  const oldest = cache.size >= CACHE_LIMIT ? cache.keys().next().value : undefined;
  if (oldest !== undefined) cache.delete(oldest);
  cache.set(pattern, compiled);
  return compiled;
}

function compile(pattern: string): CompiledPattern {
  if (pattern.length > MAX_PATTERN_LENGTH)
    return { error: `is longer than ${MAX_PATTERN_LENGTH} characters` };
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, "iu");
  } catch (error) {
    return { error: `is not a valid regular expression: ${(error as Error).message}` };
  }
  // The input comes from callers; a pattern that backtracks exponentially would let
  // any of them stall the gateway, and JavaScript cannot time a match out.
  if (nestsRepeats(pattern)) {
    return {
      error:
        "repeats a group that itself holds a repeat, as in (a+)+, which can take exponential time; rewrite it without the nested repeat",
    };
  }
  return { regex };
}

/**
 * Whether a repeated group holds a repeat of its own — (a+)+, (\w+\s?)*, ((ab)*c){2,}
 * — the common shape of catastrophic backtracking. A heuristic: it also refuses some
 * safe patterns such as ([a-z]+\.)+, and it does not see overlapping alternatives
 * such as (a|a)*.
 */
export function nestsRepeats(pattern: string): boolean {
  const enclosing: boolean[] = [];
  let holdsRepeat = false;
  let groupJustClosedWithRepeat = false;
  for (let i = 0; i < pattern.length; i++) {
    const afterRepeatingGroup = groupJustClosedWithRepeat;
    groupJustClosedWithRepeat = false;
    const char = pattern[i];
    if (char === "\\") i++;
    else if (char === "[") i = classEnd(pattern, i);
    else if (char === "(") {
      enclosing.push(holdsRepeat);
      holdsRepeat = false;
    } else if (char === ")") {
      groupJustClosedWithRepeat = holdsRepeat;
      holdsRepeat = (enclosing.pop() ?? false) || holdsRepeat;
    } else {
      const length = repeatLength(pattern, i);
      if (length === 0) continue;
      if (afterRepeatingGroup) return true;
      holdsRepeat = true;
      i += length - 1;
    }
  }
  return false;
}

/** The index of the "]" closing the class that opens at `start`. */
function classEnd(pattern: string, start: number): number {
  for (let i = start + 1; i < pattern.length; i++) {
    if (pattern[i] === "\\") i++;
    else if (pattern[i] === "]") return i;
  }
  return pattern.length;
}

const BRACES = /^\{(\d+)(,(\d*))?\}/;

/** The length of a quantifier at `at` that allows two or more repetitions, else 0. */
function repeatLength(pattern: string, at: number): number {
  const char = pattern[at];
  if (char === "*" || char === "+") return 1;
  if (char !== "{") return 0;
  const braces = BRACES.exec(pattern.slice(at));
  if (!braces) return 0;
  const [text, min, comma, max] = braces;
  const upper = comma === undefined ? Number(min) : max === "" ? Number.POSITIVE_INFINITY : Number(max);
  return upper >= 2 ? text.length : 0;
}
