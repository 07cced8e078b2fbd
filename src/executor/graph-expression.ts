import jsonata from "jsonata";

/** `{ input, [nodeId]: output }` — always plain JSON. */
export type GraphState = Record<string, unknown>;

/** A JSONata expression failed while it was evaluated. */
export class ExpressionError extends Error {
  override name = "ExpressionError";
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** JSONata guardrails: an expression is user code running on Steward's event loop. */
const EXPRESSION_LIMITS = { timeout: 5_000, stack: 1_000 };
const compiledExpressions = new Map<string, jsonata.Expression>();

/**
 * Evaluates a JSONata expression over the state (with Steward's time and depth limits), as
 * plain JSON: undefined becomes null. Runners use it for `body`, `prompt` and `input`.
 */
export async function evaluateExpression(expression: string, state: GraphState): Promise<unknown> {
  try {
    let compiled = compiledExpressions.get(expression);
    if (!compiled) {
      compiled = jsonata(expression, EXPRESSION_LIMITS);
      // Definitions come from users: bound the cache rather than let it grow without end.
      if (compiledExpressions.size >= 1_000) compiledExpressions.clear();
      compiledExpressions.set(expression, compiled);
    }
    return toJson(await compiled.evaluate(state));
  } catch (error) {
    // JSONata throws plain objects ({code, message, position}), not Errors.
    const { code, message, position } = error as { code?: string; message?: string; position?: number };
    const where = position === undefined ? "" : ` (at ${position})`;
    throw new ExpressionError(code, `${code ? `${code}: ` : ""}${message ?? String(error)}${where}`);
  }
}

/** Node outputs as plain JSON, so a run and its resumption from a checkpoint see the same state. */
export function toJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? null : JSON.parse(text);
}
