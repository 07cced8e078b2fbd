import { createHash } from "node:crypto";
import pg from "pg";

/** Runs of the same text before it is named: one-off statements are not worth a slot. */
const RUNS_BEFORE_NAMING = 3;
/** Texts named at most per pool; each named statement holds memory on every connection. */
const MAX_NAMED = 256;
/** Texts counted at most before the count starts over (statements whose text varies). */
const MAX_COUNTED = 2_048;

/**
 * Which statement texts are run often enough to be named. Shared by a pool's connections.
 *
 * A named statement is parsed and planned once per connection and then only bound and
 * executed; after five runs PostgreSQL keeps a generic plan for it. On the invoke path
 * planning was about half of each statement's time.
 */
export class StatementCache {
  private readonly runs = new Map<string, number>();
  private readonly names = new Map<string, string>();

  /** The name to run `text` under, once it has been seen often enough; otherwise none. */
  nameFor(text: string): string | undefined {
    const known = this.names.get(text);
    if (known !== undefined || this.names.size >= MAX_NAMED) return known;
    const runs = (this.runs.get(text) ?? 0) + 1;
    if (runs < RUNS_BEFORE_NAMING) {
      if (this.runs.size >= MAX_COUNTED) this.runs.clear();
      this.runs.set(text, runs);
      return undefined;
    }
    this.runs.delete(text);
    // Derived from the text, so one name can never stand for two statements.
    const name = `steward_${createHash("sha256").update(text).digest("base64url").slice(0, 24)}`;
    this.names.set(text, name);
    return name;
  }
}

/**
 * Errors meaning a connection's named statement no longer matches what the client believes:
 * it does not exist (26000), exists already (42P05), or its result type changed under it
 * after a migration (0A000, "cached plan must not change result type").
 */
const STALE_STATEMENT_CODES = new Set(["26000", "42P05", "0A000"]);

/** A `pg.Client` class whose parameterised queries run as named statements once they are frequent. */
export function preparingClient(cache: StatementCache): typeof pg.Client {
  return class PreparingClient extends pg.Client {
    /**
     * Suffixed to every name. A stale statement fails its one query; the next one is prepared
     * afresh under a new name, even inside a transaction that could not run DEALLOCATE.
     */
    private generation = 0;

    // biome-ignore lint/suspicious/noExplicitAny: pg.Client#query has a dozen overloads; this forwards all of them.
    override query(config: any, values?: any, callback?: any): any {
      const named = withName(cache, config, values, this.generation);
      const result: unknown = super.query(named, values, callback);
      if (named !== config && result instanceof Promise) {
        // A side branch: the caller still receives, and handles, the rejection itself.
        result.catch((error: { code?: string }) => {
          if (error.code !== undefined && STALE_STATEMENT_CODES.has(error.code)) this.generation += 1;
        });
      }
      return result;
    }
  };
}

// biome-ignore lint/suspicious/noExplicitAny: whatever pg.Client#query was given, passed on as it was or with a name.
function withName(cache: StatementCache, config: any, values: unknown, generation: number): any {
  // Submittables (cursors, streams) keep their own protocol.
  if (
    config === null ||
    (typeof config !== "object" && typeof config !== "string") ||
    "submit" in Object(config)
  )
    return config;
  const query: pg.QueryConfig = typeof config === "string" ? { text: config } : config;
  if (query.name !== undefined) return config;
  const parameters = values ?? query.values;
  if (!Array.isArray(parameters) || parameters.length === 0) return config;
  const name = cache.nameFor(query.text);
  if (name === undefined) return config;
  return { ...query, name: generation === 0 ? name : `${name}_${generation}` };
}
