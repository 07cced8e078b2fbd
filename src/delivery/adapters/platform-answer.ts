import { retryAfterMs } from "../../http/retry-after.js";
import type { DeliveryOutcome, HttpAnswer } from "./adapter.js";
import { truncate } from "./truncate.js";

/** Reading a platform's answer to a delivery, and quoting it without leaking credentials. */

export interface AnswerRules {
  /** Names the platform in errors: "Discord answered HTTP 404: Unknown Webhook". */
  platform: string;
  /** Credential values of the config (webhook URLs, tokens, header values). */
  secrets: readonly string[];
  now: () => Date;
  /** For platforms whose 2xx can still be a refusal (Telegram's `ok: false`). */
  accepts?: (answer: HttpAnswer) => boolean;
  /** A wait the platform states in its body rather than in Retry-After. */
  bodyRetryAfterMs?: (answer: HttpAnswer) => number | undefined;
}

const MAX_REASON_LENGTH = 200;
/** Path segments and query values this long in a secret URL are taken to be tokens. */
const MIN_TOKEN_LENGTH = 16;
const MIN_FRAGMENT_LENGTH = 8;

/** 2xx delivered; 408, 429 and 5xx retryable (honouring Retry-After); anything else final. */
export function readAnswer(answer: HttpAnswer, rules: AnswerRules): DeliveryOutcome {
  const { statusCode } = answer;
  if (statusCode >= 200 && statusCode < 300) {
    if (rules.accepts === undefined || rules.accepts(answer)) {
      return { delivered: true, retryable: false, statusCode };
    }
    return { delivered: false, retryable: false, statusCode, error: describe(answer, rules) };
  }
  if (statusCode === 408 || statusCode === 429 || statusCode >= 500) {
    const wait =
      retryAfterMs(answer.headers["retry-after"], rules.now().getTime()) ?? rules.bodyRetryAfterMs?.(answer);
    const outcome: DeliveryOutcome = {
      delivered: false,
      retryable: true,
      statusCode,
      error: describe(answer, rules),
    };
    return wait === undefined ? outcome : { ...outcome, retryAfterMs: wait };
  }
  const error =
    statusCode >= 300 && statusCode < 400
      ? `${rules.platform} answered with a redirect (HTTP ${statusCode}), which is not followed`
      : describe(answer, rules);
  return { delivered: false, retryable: false, statusCode, error };
}

/** A JSON answer body parsed, or undefined when it is not JSON. */
export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function describe(answer: HttpAnswer, rules: AnswerRules): string {
  const reason = reasonOf(answer);
  const quoted =
    reason === undefined ? "" : `: ${truncate(redact(reason, rules.secrets), MAX_REASON_LENGTH)}`;
  return `${rules.platform} answered HTTP ${answer.statusCode}${quoted}`;
}

/**
 * The platform's own word for what went wrong: Telegram's `description`, the
 * `message` of Discord, Notion and Mattermost, Teams' `error.message`. A plain-text
 * body is quoted only when it is a short code such as Slack's "invalid_payload", so
 * an HTML error page or an echoed URL never ends up in an error.
 */
function reasonOf(answer: HttpAnswer): string | undefined {
  const json = parseJson(answer.body);
  if (json === undefined) {
    const text = answer.body.trim();
    return /^[\w .:-]{1,100}$/.test(text) ? text : undefined;
  }
  if (typeof json !== "object" || json === null) return undefined;
  const { description, message, error } = json as Record<string, unknown>;
  const nested =
    typeof error === "object" && error !== null ? (error as Record<string, unknown>).message : error;
  const reason = [description, message, nested].find((value) => typeof value === "string" && value !== "");
  return typeof reason === "string" ? reason.replace(/\s+/g, " ").trim() : undefined;
}

/**
 * `text` without any credential in it. Platforms sometimes echo parts of a request;
 * a webhook URL is a credential whole, by its path, and by each token in it.
 */
export function redact(text: string, secrets: readonly string[]): string {
  const fragments = secrets.filter((secret) => secret !== "").flatMap(fragmentsOf);
  fragments.sort((a, b) => b.length - a.length);
  let redacted = text;
  for (const fragment of fragments) redacted = redacted.replaceAll(fragment, "[redacted]");
  return redacted;
}

function fragmentsOf(secret: string): string[] {
  const derived = [encodeURIComponent(secret)];
  if (URL.canParse(secret)) {
    const url = new URL(secret);
    const tokens = [...url.pathname.split("/"), ...url.searchParams.values()];
    derived.push(url.pathname + url.search, ...tokens.filter((token) => token.length >= MIN_TOKEN_LENGTH));
  }
  // Short derived pieces ("/", "/hook") are not secret and would garble every quote.
  return [secret, ...derived.filter((fragment) => fragment.length >= MIN_FRAGMENT_LENGTH)];
}
