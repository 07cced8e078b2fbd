import { redact } from "../../crypto/redact.js";
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
  /**
   * For platforms whose 2xx can report that the message failed further on, with the
   * status it failed with: legacy Teams connectors answer 200 with "…returned HTTP error
   * 429…". That status decides whether a retry can help.
   */
  failureIn2xx?: (answer: HttpAnswer) => ReportedFailure | undefined;
  /** Statuses besides 408, 429 and 5xx that the platform asks to retry (Notion's 409 conflict). */
  alsoRetryable?: readonly number[];
  /** The platform's reason, where its error bodies have their own shape. */
  reasonOf?: (answer: HttpAnswer) => string | undefined;
  /** A wait the platform states in its body rather than in Retry-After. */
  bodyRetryAfterMs?: (answer: HttpAnswer) => number | undefined;
}

export interface ReportedFailure {
  statusCode: number;
  /** In the platform's words, quoted after redaction. */
  reason: string;
}

const MAX_REASON_LENGTH = 200;

/** 2xx delivered; 408, 429 and 5xx retryable (honouring Retry-After); anything else final. */
export function readAnswer(answer: HttpAnswer, rules: AnswerRules): DeliveryOutcome {
  const { statusCode } = answer;
  if (statusCode >= 200 && statusCode < 300) {
    const failure = rules.failureIn2xx?.(answer);
    if (failure !== undefined) {
      const reason = truncate(redact(failure.reason, rules.secrets), MAX_REASON_LENGTH);
      return {
        delivered: false,
        retryable: isRetryable(failure.statusCode, rules),
        statusCode,
        error: `${rules.platform} answered HTTP ${statusCode} reporting HTTP ${failure.statusCode}: ${reason}`,
      };
    }
    if (rules.accepts === undefined || rules.accepts(answer)) {
      return { delivered: true, retryable: false, statusCode };
    }
    return { delivered: false, retryable: false, statusCode, error: describe(answer, rules) };
  }
  if (isRetryable(statusCode, rules)) {
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

function isRetryable(statusCode: number, rules: AnswerRules): boolean {
  return (
    statusCode === 408 ||
    statusCode === 429 ||
    statusCode >= 500 ||
    (rules.alsoRetryable?.includes(statusCode) ?? false)
  );
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
  const reason = (rules.reasonOf ?? reasonOf)(answer);
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
export function reasonOf(answer: HttpAnswer): string | undefined {
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
