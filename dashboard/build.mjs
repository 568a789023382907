// Bundle src/ into ../dashboard_dist (or --outdir DIR): hashed assets plus index.html.
// Deterministic: the same sources and lockfile give the same bytes, so CI can rebuild and diff.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--outdir");
const outdir = resolve(outIndex >= 0 ? args[outIndex + 1] : join(here, "..", "dashboard_dist"));
const KEEP = new Set(["__init__.py"]); // dashboard_dist is a Python package so importlib.resources finds it

function clean(dir) {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) {
    if (!KEEP.has(name) && name !== "__pycache__") rmSync(join(dir, name), { recursive: true, force: true });
  }
}

clean(outdir);
const result = await build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome90", "firefox90", "safari14"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(outdir, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => "/" + relative(outdir, resolve(p)).split("\\").join("/"));
const js = outputs.find((p) => p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));
if (!js || !css) throw new Error("esbuild produced no js/css: " + outputs.join(", "));

// Static files copied as they are (favicon); small, so named without a hash and cached for 6 h.
for (const name of readdirSync(join(here, "public"))) copyFileSync(join(here, "public", name), join(outdir, name));

const sri = (p) => "sha384-" + createHash("sha384").update(readFileSync(join(outdir, p))).digest("base64");
// No inline script or style: everything comes from /assets/, so `default-src 'self'` is enough.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="same-origin">
<title>Medama</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${css}" integrity="${sri(css)}">
<script type="module" src="${js}" integrity="${sri(js)}"></script>
</head>
<body>
<div id="app"><noscript>The Medama dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;
writeFileSync(join(outdir, "index.html"), html);
console.log(`built ${[...outputs, "/index.html"].map((p) => basename(p)).join(", ")} in ${outdir}`);
