#!/usr/bin/env node
'use strict';
// Entry point for `npx twlab`: the compiled CLI lives in dist/ (built by `npm install`).
const path = require('node:path');
const fs = require('node:fs');
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write('twlab: not built yet (dist/src/cli.js missing); run `npm install` (or `npm run build`) in ' + path.dirname(__dirname) + '\n');
  process.exit(2);
}
require(cli).main(process.argv).catch((e) => {
  process.stderr.write('twlab: internal error: ' + (e && e.stack ? e.stack : String(e)) + '\n');
  process.exit(70);
});
