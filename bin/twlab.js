#!/usr/bin/env node
'use strict';
// Entry point for `npx twlab`, `npm exec twlab` and a global `npm link`: the compiled CLI lives in
// dist/ (built by `npm install`).
const path = require('node:path');
const fs = require('node:fs');
// It may run before anything was installed (`npx twlab` typed first in a fresh clone), so it
// uses nothing but Node and says in one line what to do.
const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(cli)) {
  const installed = fs.existsSync(path.join(root, 'node_modules', 'typescript'));
  process.stderr.write(
    installed
      ? `twlab: not built yet (dist/ is missing); run \`npm run build\` in ${root}\n`
      : `twlab: not installed yet; run \`npm install\` in ${root} first (it installs the dependencies and builds twlab)\n`,
  );
  process.exit(2);
}
require(cli)
  .main(process.argv)
  .catch((e) => {
    process.stderr.write('twlab: internal error: ' + (e?.stack ? e.stack : String(e)) + '\n');
    process.exit(70);
  });
