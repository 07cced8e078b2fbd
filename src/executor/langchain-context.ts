import { AsyncLocalStorageProviderSingleton } from "@langchain/core/singletons";

/**
 * LangChain runs every runnable — each LangGraph node, channel write and branch — inside
 * AsyncLocalStorage holding a fresh LangSmith `RunTree`, built even with tracing off (a
 * UUIDv7, a timestamp string, a dozen environment reads): a third of LangGraph's CPU per
 * trivial job here. The tree only carries the config to code that calls runnables
 * without passing it on, which Steward never does: nodes get their config as an argument,
 * and jobs are not traced to LangSmith. So runnables are run without a root tree;
 * `runWithConfig`'s third argument is LangChain's own switch for that.
 */
export function runLangChainWithoutRootRunTrees(): void {
  const provider: typeof AsyncLocalStorageProviderSingleton & { [WITHOUT_ROOT_RUN_TREES]?: true } =
    AsyncLocalStorageProviderSingleton;
  // Once per process, however often this module is loaded (test runners load it per file).
  if (provider[WITHOUT_ROOT_RUN_TREES]) return;
  const runWithConfig = provider.runWithConfig.bind(provider);
  provider.runWithConfig = (config, callback) => runWithConfig(config, callback, true);
  provider[WITHOUT_ROOT_RUN_TREES] = true;
}

const WITHOUT_ROOT_RUN_TREES = Symbol.for("steward.langchain.withoutRootRunTrees");
