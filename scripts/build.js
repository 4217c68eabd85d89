#!/usr/bin/env node
'use strict';
// The two build steps npm runs as lifecycle scripts: `install` builds the native addon
// (node-gyp), `prepare` compiles the TypeScript (tsc).
//
// npm also runs them when this folder is only *linked*: `npx twlab` (or `npm exec twlab`) in a
// clone installs the clone into npx's cache as a link and runs its lifecycle scripts there —
// without installing its dependencies. A step whose tools are missing must then say what to do
// and succeed: if it failed, npm would leave its cache entry for this clone half-made, and every
// later `npx twlab` here would fail with npm's own ENOENT, even after `npm install` (issue 23).
// `npm install` and `npm ci` install the dependencies before these steps run, so there they build
// (and a real build error fails the install). Under `npm exec` and `npm link` a step that is
// already built is not built again: a first `npx twlab` after `npm install` starts at once.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const step = process.argv[2];
const STEPS = {
  addon: { needs: 'node-addon-api', output: 'build/Release/twlab.node', what: 'the native addon' },
  ts: { needs: 'typescript/bin/tsc', output: 'dist/src/cli/main.js', what: 'the TypeScript' },
};
const s = STEPS[step];
if (!s) {
  process.stderr.write(`usage: node scripts/build.js ${Object.keys(STEPS).join('|')}\n`);
  process.exit(2);
}

function resolve(mod) {
  try {
    return require.resolve(mod, { paths: [root] });
  } catch {
    return null;
  }
}

const tool = resolve(s.needs);
if (!tool) {
  process.stderr.write(`twlab: ${s.what} not built (its dependencies are not installed in ${root}); run \`npm install\` there\n`);
  process.exit(0);
}
if ((process.env.npm_command === 'exec' || process.env.npm_command === 'link') && fs.existsSync(path.join(root, s.output))) process.exit(0);

const r =
  step === 'addon'
    ? spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' }) // npm puts its node-gyp on PATH for lifecycle scripts
    : spawnSync(process.execPath, [tool, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`twlab: building ${s.what} failed: ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
