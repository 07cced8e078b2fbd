// Builds the dashboard into dist/web by way of a fresh directory swapped in at the end,
// so a Steward serving dist/web meanwhile (a running server, a test) never finds it
// half-written: the build's file names are content hashes, the same for the same sources.
import { rename, rm } from "node:fs/promises";
import { build } from "vite";

const out = new URL("../dist/web", import.meta.url).pathname;
const fresh = `${out}.next-${process.pid}`;
const previous = `${out}.previous-${process.pid}`;

// The dashboard ships as a production build whatever the caller's NODE_ENV (a test runner
// sets "test", which would give React's development bundle under other file names).
process.env.NODE_ENV = "production";
await build({
  configFile: new URL("../web/vite.config.ts", import.meta.url).pathname,
  mode: "production",
  logLevel: "warn",
  build: { outDir: fresh, emptyOutDir: true },
});
await rename(out, previous).catch((error) => {
  if (error.code !== "ENOENT") throw error;
});
await rename(fresh, out);
await rm(previous, { recursive: true, force: true });
