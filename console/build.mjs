// Bundles the operator console into OUTDIR (default ../build/console): app-HASH.js and
// app-HASH.css (content-hashed: the server lets browsers cache them for a year) and index.html,
// which names them. esbuild comes from node_modules (tools/install-npm.sh); nothing is fetched.
//
//   node build.mjs OUTDIR
import * as esbuild from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const outdir = resolve(process.argv[2] ?? join(here, '..', 'build', 'console'));
mkdirSync(outdir, { recursive: true });
for (const f of readdirSync(outdir)) rmSync(join(outdir, f), { recursive: true, force: true });

const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.jsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
writeFileSync(
  join(outdir, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agate console</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="/${css}">` : ''}
<script type="module" src="/${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`,
);
console.log(`console: ${[...outputs, 'index.html'].join(', ')} in ${outdir}`);
