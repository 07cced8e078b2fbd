import { PgDialect } from "drizzle-orm/pg-core";
import { describe, expect, it } from "vitest";
import { literalIn } from "../../src/db/literal-in.js";
import { jobs } from "../../src/db/schema.js";

describe("literalIn", () => {
  it("writes the values into the statement, with nothing bound", () => {
    const query = new PgDialect().sqlToQuery(literalIn(jobs.status, ["queued", "running"]));
    expect(query).toEqual({ sql: `"jobs"."status" IN ('queued', 'running')`, params: [] });
  });

  it.each(["it's", "Running", "a b", ""])("refuses %j, which is not a fixed word", (value) => {
    expect(() => literalIn(jobs.status, [value])).toThrow(/fixed lower-case words/);
  });
});
