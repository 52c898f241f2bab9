/// <reference types="vitest/config" />
// Wisp's web app: built into dist/, which `make run` serves at `/` and a deployment uploads to its
// frontend bucket (infra/README.md §3.2). `base: "./"` keeps every asset URL relative, so the same
// build works below any path prefix; the API is called relatively too (same origin, spec §1.1).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
  },
  server: {
    // `npm run dev`: the API of a `make run` stack on its default port
    proxy: { "/api": "http://127.0.0.1:8000", "/openapi.json": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
