// `twlab report`: the HTML reports rebuilt from evidence already in --out.
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TwlabError } from '../lab/api/errors';
import { writeReports } from '../lab/report/html';
import { checkOutDir } from '../lab/run/outdir';
import { resolveLabIds } from '../lab/run/registry';
import { OPTIONS } from './options';
import { err, out, shown, whyNotWritten } from './output';

export function register(program: Command): void {
  program
    .command('report')
    .description('rebuild the HTML reports (report.html per lab, index.html) from evidence already in --out')
    .argument('[ids...]', 'labs to rebuild (default: every lab folder found)')
    .addOption(OPTIONS.out('directory holding the evidence'))
    .action((ids: string[], opts: { out: string }) => {
      process.exitCode = reportCommand(ids, opts.out);
    });
}

/** The reports rebuilt from --out; a damaged lab folder is skipped and named. */
function reportCommand(ids: string[], outOption: string): number {
  const only = ids.length ? resolveLabIds(ids).map((d) => d.id) : undefined;
  const outDir = evidenceDir(outOption);
  const skipped: string[] = [];
  let written: string[];
  try {
    written = writeReports(outDir, only, skipped);
  } catch (e) {
    throw new TwlabError(
      'BAD_USAGE',
      `cannot write the reports into ${outDir} (${whyNotWritten(e)})${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`,
    );
  }
  for (const f of written) out(shown(f));
  for (const s of skipped) err(`twlab: skipped ${s}: run that lab again to replace it`);
  return skipped.length ? 1 : 0;
}

/** --out of a command that reads evidence: an existing directory (not a file, not a kernel pseudo-filesystem). */
function evidenceDir(outOption: string): string {
  if (outOption.trim() === '') throw new TwlabError('BAD_USAGE', '--out takes a directory, not an empty string');
  const outDir = path.resolve(outOption);
  let st: fs.Stats;
  try {
    st = fs.statSync(outDir);
  } catch {
    throw new TwlabError('BAD_USAGE', `no evidence in ${outDir}; run some labs first (\`twlab run all --out ${outOption}\`)`);
  }
  if (!st.isDirectory()) throw new TwlabError('BAD_USAGE', `--out ${outOption}: ${outDir} is a file, not a directory of evidence`);
  checkOutDir(outOption);
  return outDir;
}
