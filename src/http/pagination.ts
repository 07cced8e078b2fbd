import Type, { type TSchema } from "typebox";

/** The query parameters every list endpoint accepts. */
export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, default: 1, description: "Page number, from 1" })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 100, default: 20, description: "Items per page" }),
  ),
};

export interface PageRequest {
  page: number;
  limit: number;
  offset: number;
}

export function pageRequest(query: { page?: number; limit?: number }): PageRequest {
  const page = query.page ?? 1;
  const limit = query.limit ?? 20;
  return { page, limit, offset: (page - 1) * limit };
}

/** The envelope every list endpoint answers with. */
export function Paginated<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    total: Type.Integer(),
    page: Type.Integer(),
    limit: Type.Integer(),
    has_more: Type.Boolean(),
  });
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  limit: number;
  has_more: boolean;
}

export function toPage<T>(items: T[], total: number, request: PageRequest): Page<T> {
  return {
    items,
    total,
    page: request.page,
    limit: request.limit,
    has_more: request.offset + items.length < total,
  };
}
