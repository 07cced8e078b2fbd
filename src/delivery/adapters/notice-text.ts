import type { InvocationNotice } from "./adapter.js";
import { truncate } from "./truncate.js";

/** How an invocation notice reads on any platform: wording, colours and the facts shown. */

/** success is green; failure and timeout red; refusals by governance amber. */
export type Tone = "success" | "failure" | "refusal";

/** Amber: refused by governance, or waiting for a person. */
const REFUSALS = new Set(["policy_denied", "rate_limited", "budget_exceeded", "pending_approval"]);

export function toneOf(status: string): Tone {
  if (status === "success") return "success";
  return REFUSALS.has(status) ? "refusal" : "failure";
}

/** As 0xRRGGBB, the form Discord wants; `hexColour` gives "#rrggbb". */
export const TONE_COLOURS: Record<Tone, number> = { success: 0x1f883d, failure: 0xcf222e, refusal: 0xd4a72c };

export function hexColour(tone: Tone): string {
  return `#${TONE_COLOURS[tone].toString(16).padStart(6, "0")}`;
}

const STATUS_LABELS: Record<string, string> = {
  success: "Succeeded",
  failure: "Failed",
  timeout: "Timed out",
  policy_denied: "Denied by policy",
  rate_limited: "Rate limited",
  budget_exceeded: "Budget exceeded",
  pending_approval: "Waiting for approval",
};

/** A status newer than this code is shown as it is rather than dropped. */
export function statusLabel(status: string): string {
  return STATUS_LABELS[status] ?? status;
}

export function headline(notice: InvocationNotice): string {
  return `${notice.agentName}: ${statusLabel(notice.status)}`;
}

/** The output as text: strings as they are, anything else as compact JSON, nothing as "". */
export function outputText(output: unknown): string {
  if (output === null || output === undefined) return "";
  if (typeof output === "string") return output;
  return JSON.stringify(output) ?? String(output);
}

export function durationText(durationMs: number | null): string {
  if (durationMs === null) return "n/a";
  return durationMs < 1000 ? `${durationMs} ms` : `${(durationMs / 1000).toFixed(1)} s`;
}

/** "2026-03-01 12:00:05 UTC": readable and unambiguous without knowing the reader's zone. */
export function utcText(time: Date): string {
  return `${time.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export interface Fact {
  title: string;
  value: string;
}

/** The details every platform lists; empty values are left out (Discord refuses them). */
export function factsOf(notice: InvocationNotice): Fact[] {
  const facts: Fact[] = [
    { title: "Agent", value: notice.agentName },
    { title: "Invocation", value: notice.invocationId },
    { title: "Status", value: statusLabel(notice.status) },
    { title: "Duration", value: durationText(notice.durationMs) },
    { title: "Completed", value: utcText(notice.completedAt) },
  ];
  if (notice.costUsd !== null) facts.push({ title: "Cost", value: `$${notice.costUsd.toFixed(4)}` });
  if (notice.error) facts.push({ title: "Error", value: notice.error });
  return facts.filter((fact) => fact.value !== "");
}

const FENCE = "```";
const FENCE_OVERHEAD = 2 * (FENCE.length + 1);

/**
 * A Markdown code block at most `max` long, its text escaped per character. Output
 * containing ``` would close the block early and turn the rest into markup, so a
 * zero-width space goes after every backtick that starts a run of three.
 */
export function fenced(text: string, max: number, escapeChar?: (char: string) => string): string {
  const inner = truncate(text.replace(/`(?=``)/g, "`\u200b"), max - FENCE_OVERHEAD, escapeChar);
  return `${FENCE}\n${inner}\n${FENCE}`;
}

/** The output for a Markdown platform: text as written by the agent, structured data as a code block. */
export function outputMarkdown(output: unknown, max: number, escapeChar?: (char: string) => string): string {
  const text = outputText(output);
  if (text === "") return "";
  return typeof output === "string" ? truncate(text, max, escapeChar) : fenced(text, max, escapeChar);
}
