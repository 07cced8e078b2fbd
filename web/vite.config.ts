import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

/** The dashboard is built into dist/web, next to the server's build, and served by Steward at `/`. */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    // `npx vite web` for work on the dashboard, with the API of a Steward on :8080.
    proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } },
  },
});
