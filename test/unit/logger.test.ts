import { Writable } from "node:stream";
import { DrizzleQueryError } from "drizzle-orm/errors";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";

const SECRET = "Bearer canary-4c1f9e";

function logged(record: (logger: ReturnType<typeof createLogger>) => void): string {
  const lines: string[] = [];
  const logger = createLogger(
    "info",
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  record(logger);
  return lines.join("");
}

describe("the logger", () => {
  const failedQuery = () =>
    new DrizzleQueryError(
      "insert into jobs (id, input) values ($1, $2)",
      ["job-1", SECRET],
      new Error("boom"),
    );

  it("logs a failed query's statement without the values it bound", () => {
    const line = logged((logger) => logger.error({ err: failedQuery() }, "request failed"));
    expect(line).not.toContain(SECRET);
    const { err } = JSON.parse(line);
    expect(err.message).toBe(
      "Failed query: insert into jobs (id, input) values ($1, $2)\nparams: [not logged]",
    );
    expect(err).not.toHaveProperty("params");
  });

  it("keeps them out of an error the failed query caused", () => {
    const line = logged((logger) => logger.error({ err: new Error("outer", { cause: failedQuery() }) }, "x"));
    expect(line).not.toContain(SECRET);
    expect(JSON.parse(line).err.message).toContain("Failed query: insert into jobs");
  });

  it("logs what is not an error as it is", () => {
    const line = logged((logger) => {
      logger.warn({ err: null }, "nothing");
      logger.warn({ err: "connection refused" }, "text");
    });
    const [first, second] = line
      .trim()
      .split("\n")
      .map((text) => JSON.parse(text));
    expect(first.err).toBeNull();
    expect(second.err).toBe("connection refused");
  });
});
