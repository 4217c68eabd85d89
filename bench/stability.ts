// `npm run bench:stability [-- runs]`: the default `twlab run all`, several times in a row (5 unless
// told), as a user runs it. Prints, per run, how long it took against its longest lab, lab 11's
// evidence size and any capture frame stamped earlier than the one before; then whether every
// run gave the same verdicts. Figures only: it asserts nothing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readPcap } from '../src/capture/pcap';
import type { LabResult } from '../src/lab/api/types';

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'twlab.js');

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

function backwardsFrames(out: string, results: LabResult[]): string[] {
  const bad: string[] = [];
  for (const r of results) {
    for (const v of r.variants) {
      if (!v.pcap) continue;
      const { records } = readPcap(path.join(out, `${r.lab}-${r.slug}`, v.pcap));
      const n = records.filter((x, i) => i > 0 && x.timeUs < records[i - 1]!.timeUs).length;
      if (n) bad.push(`${r.lab}/${v.pcap}: ${n}`);
    }
  }
  return bad;
}

function main(): void {
  const runs = Number(process.argv[2] ?? 5);
  if (process.geteuid?.() !== 0) {
    console.error('bench:stability runs labs: run it as root');
    process.exit(2);
  }
  const verdictSets: string[] = [];
  console.log(`twlab run all, ${runs} times in a row, default settings (${os.cpus().length} CPUs, Linux ${os.release()})`);
  for (let i = 1; i <= runs; i++) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'twlab-stability-'));
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'run', 'all', '--json', '--out', out], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const wallMs = performance.now() - t0;
    if (r.status !== 0) {
      console.log(`run ${i}: failed (exit ${r.status}): ${r.stderr.trim().split('\n').pop()}`);
      verdictSets.push(`failed ${i}`);
      fs.rmSync(out, { recursive: true, force: true });
      continue;
    }
    const results = JSON.parse(r.stdout) as LabResult[];
    const longest = results.reduce((a, b) => (b.durationMs > a.durationMs ? b : a));
    const verdicts = results.flatMap((x) => x.claims.map((c) => `${x.lab} ${c.id} ${c.verdict}`));
    verdictSets.push(verdicts.join('\n'));
    const lab11 = results.find((x) => x.lab === '11');
    const bad = backwardsFrames(out, results);
    const notHolding = verdicts.filter((v) => !v.endsWith('holds') && !v.endsWith('differs by OS') && !v.endsWith('does not hold'));
    console.log(
      `run ${i}: ${(wallMs / 1000).toFixed(1)} s; longest lab ${longest.lab} ${(longest.durationMs / 1000).toFixed(1)} s (×${(wallMs / longest.durationMs).toFixed(2)}); ` +
        `lab 11 evidence ${lab11 ? `${(dirBytes(path.join(out, `11-${lab11.slug}`)) / 1e6).toFixed(1)} MB, C13 ${lab11.claims.find((c) => c.id === 'C13')?.verdict}, C14 ${lab11.claims.find((c) => c.id === 'C14')?.verdict}` : 'n/a'}; ` +
        `frames out of time order: ${bad.length ? bad.join(', ') : 'none'}` +
        (notHolding.length ? `; ${notHolding.join('; ')}` : ''),
    );
    fs.rmSync(out, { recursive: true, force: true });
  }
  const same = verdictSets.every((v) => v === verdictSets[0]);
  console.log(
    same ? `identical verdicts in all ${runs} runs (${verdictSets[0]!.split('\n').length} claims)` : 'verdicts DIFFER between runs:',
  );
  if (!same) {
    const lines = verdictSets.map((v) => new Set(v.split('\n')));
    const all = new Set(lines.flatMap((l) => [...l]));
    for (const v of [...all].sort())
      if (!lines.every((l) => l.has(v))) console.log(`  ${v}: in ${lines.filter((l) => l.has(v)).length}/${runs} runs`);
  }
}

main();
