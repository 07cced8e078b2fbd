import { describe, expect, it } from "vitest";
import { StatementCache } from "../../src/db/statement-cache.js";

describe("statement cache", () => {
  it("names a text on its third run, and keeps that name", () => {
    const cache = new StatementCache();
    const text = "SELECT * FROM invocations WHERE id = $1";
    expect(cache.nameFor(text)).toBeUndefined();
    expect(cache.nameFor(text)).toBeUndefined();
    const name = cache.nameFor(text);
    expect(name).toMatch(/^steward_[\w-]{24}$/);
    expect(cache.nameFor(text)).toBe(name);
  });

  it("gives different texts different names, and one text the same name in every cache", () => {
    const runThrice = (cache: StatementCache, text: string) => {
      cache.nameFor(text);
      cache.nameFor(text);
      return cache.nameFor(text);
    };
    const first = new StatementCache();
    const a = runThrice(first, "SELECT $1::int");
    const b = runThrice(first, "SELECT $1::text");
    expect(a).not.toBe(b);
    expect(runThrice(new StatementCache(), "SELECT $1::int")).toBe(a);
  });

  it("stops naming new texts at 256, so a connection's prepared statements stay bounded", () => {
    const cache = new StatementCache();
    const names = new Set<string>();
    for (let index = 0; index < 300; index++) {
      const text = `SELECT $1::int + ${index}`;
      cache.nameFor(text);
      cache.nameFor(text);
      const name = cache.nameFor(text);
      if (name) names.add(name);
    }
    expect(names.size).toBe(256);
    expect(cache.nameFor("SELECT $1::int + 0")).toBeDefined();
    expect(cache.nameFor("SELECT $1::int + 299")).toBeUndefined();
  });
});
