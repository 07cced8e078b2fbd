import Type, { type TSchema } from "typebox";
import { ERROR_CODES } from "../errors.js";

/** The error envelope, for the OpenAPI description of every route. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.Enum(ERROR_CODES),
      message: Type.String(),
      request_id: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { description: "Error envelope" },
);

/** Response schemas for the listed error statuses. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorResponse]));
}

/** Every /api/v1 route accepts an API key or JWT as a bearer token, or an API key in X-API-Key. */
export const API_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

/** A field that may be null. */
export function Nullable<T extends TSchema>(schema: T) {
  return Type.Union([schema, Type.Null()]);
}
