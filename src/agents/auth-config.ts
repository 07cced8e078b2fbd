import Type from "typebox";
import { signingSecretProblem } from "../crypto/webhook-signer.js";
import type { FieldError } from "../errors.js";
import { configuredHeaderProblems, headerValueProblem } from "../http/outbound-headers.js";
import type { AuthType } from "./agent-kinds.js";
import { type ConfigSpec, HEADER_NAME_PATTERN } from "./config-schema.js";

/** How Steward authenticates to an agent: one schema per auth type. */

const secret = (description: string) => Type.String({ minLength: 1, maxLength: 8192, description });
const text = (description: string) => Type.String({ minLength: 1, maxLength: 2048, description });
const headerName = (description: string) => Type.String({ pattern: HEADER_NAME_PATTERN, description });
const strict = { additionalProperties: false } as const;

export const AUTH_CONFIG_SPECS: Record<AuthType, ConfigSpec> = {
  oauth2: {
    schema: Type.Object(
      {
        client_id: text("OAuth2 client id"),
        client_secret: secret("OAuth2 client secret"),
        token_url: text("Token endpoint for the client-credentials grant"),
        scope: Type.Optional(text("Requested scope")),
        audience: Type.Optional(text("Requested audience")),
      },
      strict,
    ),
    secretPaths: ["client_secret"],
    urlFields: ["token_url"],
  },
  api_key: {
    schema: Type.Object(
      {
        key: secret("The API key sent to the agent"),
        header_name: Type.Optional(headerName("Header carrying the key (default X-API-Key)")),
      },
      strict,
    ),
    secretPaths: ["key"],
    urlFields: [],
    refine: (config) => sentAsHeader(config, "key"),
  },
  bearer_token: {
    schema: Type.Object({ token: secret("Sent as Authorization: Bearer <token>") }, strict),
    secretPaths: ["token"],
    urlFields: [],
    refine: (config) => sentAsHeader(config, "token"),
  },
  basic: {
    schema: Type.Object(
      { username: text("Basic auth user name"), password: secret("Basic auth password") },
      strict,
    ),
    secretPaths: ["password"],
    urlFields: [],
  },
  hmac: {
    schema: Type.Object(
      {
        secret: secret("Signing secret: a Standard Webhooks whsec_… secret or a raw string"),
        header_name: Type.Optional(headerName("Header carrying the signature (default webhook-signature)")),
      },
      strict,
    ),
    secretPaths: ["secret"],
    urlFields: [],
    refine: (config) => {
      const problem = signingSecretProblem(config.secret as string);
      return problem === undefined ? [] : [{ field: "secret", message: problem }];
    },
  },
  custom: {
    schema: Type.Object(
      {
        headers: Type.Record(Type.String({ pattern: HEADER_NAME_PATTERN }), secret("Header value"), {
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 50,
          description: "Headers sent with every call; their values are stored encrypted",
        }),
      },
      strict,
    ),
    secretPaths: ["headers.*"],
    urlFields: [],
    refine: (config) => configuredHeaderProblems(config.headers as Record<string, string>, "headers"),
  },
  none: { schema: Type.Object({}, strict), secretPaths: [], urlFields: [] },
};

/** A credential sent as a header value must be one HTTP can carry. */
function sentAsHeader(config: Record<string, unknown>, field: string): FieldError[] {
  const problem = headerValueProblem(config[field] as string);
  return problem === undefined ? [] : [{ field, message: problem }];
}
