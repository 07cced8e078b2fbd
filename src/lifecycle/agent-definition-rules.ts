import semver from "semver";
import { Compile } from "typebox/compile";
import type { FieldError } from "../errors.js";
import { AGENT_NAME_PATTERN, AGENT_TYPE_PATTERN } from "./agent-package.js";
import type { AgentDefinitionBody } from "./managed-agent.schemas.js";
import { topicProblem } from "./nats-credentials.js";

/** What is wrong with a definition given over the API, field by field (the same rules as a package). */
export function definitionErrors(body: Partial<AgentDefinitionBody>): FieldError[] {
  const errors: FieldError[] = [];
  const required = ["name", "version", "description", "subscribed_topics", "findings_topic"] as const;
  for (const field of required)
    if (body[field] === undefined) errors.push({ field, message: `${field} is required` });
  if (body.name !== undefined && !AGENT_NAME_PATTERN.test(body.name))
    errors.push({ field: "name", message: "must be a lower-case slug (letters, digits, - and _)" });
  if (body.version !== undefined && semver.valid(body.version) !== body.version)
    errors.push({ field: "version", message: `"${body.version}" is not a semantic version` });
  if (body.type !== undefined && !AGENT_TYPE_PATTERN.test(body.type))
    errors.push({ field: "type", message: "must be a lower-case slug starting with a letter" });
  errors.push(...topicErrors(body.subscribed_topics ?? [], body.findings_topic));
  if (body.config_schema !== undefined) {
    const schema = body.config_schema;
    if (schema.type !== undefined && schema.type !== "object")
      errors.push({ field: "config_schema", message: 'must describe an object ("type": "object")' });
    else if (schema.properties !== undefined && !isPlainObject(schema.properties))
      errors.push({ field: "config_schema", message: '"properties" must be an object' });
    else {
      try {
        Compile(schema);
      } catch {
        errors.push({ field: "config_schema", message: "is not a JSON Schema Steward can compile" });
      }
    }
  }
  return errors;
}

/** Topics an agent may not have: invalid, or reaching beyond its own subjects (see nats-credentials). */
export function topicErrors(subscribed: readonly string[], findings: string | undefined): FieldError[] {
  const errors: FieldError[] = [];
  subscribed.forEach((subject, index) => {
    const problem = topicProblem(subject, true);
    if (problem) errors.push({ field: `subscribed_topics[${index}]`, message: `"${subject}" ${problem}` });
  });
  const problem = findings === undefined ? undefined : topicProblem(findings, false);
  if (problem) errors.push({ field: "findings_topic", message: `"${findings}" ${problem}` });
  return errors;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
