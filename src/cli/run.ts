// `twlab run`: labs on the host (each in its own namespace), or on several kernels side by side
// (--kernel). Both print the labs' lines, their evidence and the reports the same way.
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseKernelList } from '../kernels/debian';
import { MatrixRunner, prepareKernels, type KernelTarget } from '../kernels/matrix';
import type { LabMessage } from '../lab/api/context';
import { TwlabError } from '../lab/api/errors';
import { formatJson } from '../lab/api/json';
import { resolveParams, type ParamValue } from '../lab/api/params';
import type { Predictions } from '../lab/api/questions';
import { labDirName, type LabDefinition, type LabResult } from '../lab/api/types';
import { formatClass, type ClassAnswers } from '../lab/report/classroom';
import { compareClaims, compareLabItems, renderComparisonText, type KernelColumn } from '../lab/report/compare';
import { FAMILIES, familiesOf, familyFolder, familyLabel, familyPair } from '../lab/api/family';
import type { IpFamily } from '../wire/address';
import { writeLabReport, writeReports } from '../lab/report/html';
import { askOnTerminal, formatPredictions, readPredictions } from '../lab/report/predict';
import { EARLIER_DIR, KEEP_EARLIER } from '../lab/run/earlier';
import { checkOutDir, prepareOutDir } from '../lab/run/outdir';
import { assertReady } from '../lab/run/preflight';
import { allLabs, resolveLabIds } from '../lab/run/registry';
import { interruptedError, LabRunner, withSignalForwarding, type LabOutcome } from '../lab/run/runner';
import { OPTIONS, parseJobs, type RunOptions } from './options';
import { colour, err, out, paintVerdicts, shown, whyNotWritten } from './output';

export function register(program: Command): void {
  program
    .command('run')
    .description('run labs, each in its own network namespace, in parallel; evidence goes to --out')
    .argument('<ids...>', 'lab ids (01, 1, bind-matrix, 01-bind-matrix) or `all`')
    .addOption(OPTIONS.set())
    .addOption(OPTIONS.json('print only a JSON array of results (the result.json of each lab) on stdout'))
    .addOption(OPTIONS.out('directory for evidence (one folder per lab, replaced on success)'))
    .addOption(OPTIONS.predict())
    .addOption(OPTIONS.jobs())
    .addOption(OPTIONS.kernel())
    .action(async (ids: string[], opts: RunOptions) => {
      process.exitCode = await runCommand(ids, opts);
    });
}

/**
 * The labs' messages while they run: progress on one terminal line (without a terminal, a lab's
 * progress every 5 s at most), printed lines kept per lab until it is done. Nothing with --json.
 */
class LabMessages {
  readonly #quiet: boolean;
  readonly #tty: boolean;
  readonly #printed = new Map<string, string[]>();
  readonly #lastPlain = new Map<string, number>();
  #lastProgress = '';

  constructor(json: boolean | undefined) {
    this.#quiet = !!json;
    this.#tty = !json && process.stderr.isTTY;
  }

  get tty(): boolean {
    return this.#tty;
  }

  /** `key` names the lab (with its kernel, on several), as its progress line shows it. */
  take(key: string, m: LabMessage): void {
    if (this.#quiet) return;
    if (m.type === 'print') this.#printed.set(key, [...(this.#printed.get(key) ?? []), m.text]);
    else if (m.type === 'progress') {
      if (this.#tty) {
        this.#lastProgress = `[${key}] ${m.text}`;
        process.stderr.write(`\r\x1b[K${this.#lastProgress}`);
      } else if (Date.now() - (this.#lastPlain.get(key) ?? 0) > 5000) {
        this.#lastPlain.set(key, Date.now());
        err(`[${key}] ${m.text}`);
      }
    }
  }

  printed(key: string): string[] {
    return this.#printed.get(key) ?? [];
  }

  /** Clears the progress line once the labs are done. */
  done(): void {
    if (this.#tty && this.#lastProgress) process.stderr.write('\r\x1b[K');
  }
}

/** A saved lab's lines (what it printed, verdicts coloured), then its evidence and what became of the previous run's. */
function printSaved(o: LabOutcome, lines: readonly string[], outDir: string, withReport: boolean): void {
  // a failed lab's verdict lines are not shown: nothing of that run was kept
  for (const line of lines) out(line);
  const files = ['result.json', 'timeline.json', ...o.result!.variants.flatMap((v) => [v.pcap, v.pcapng]).filter((p): p is string => !!p)];
  out(`\nEvidence: ${shown(o.dir!)}/ (${files.join(', ')}${withReport ? ', report.html' : ''})`);
  if (o.earlier) {
    const when = o.earlier.startedAt ? ` (${o.earlier.startedAt})` : '';
    const removed = o.earlier.removed.length
      ? ` (the oldest kept run, ${o.earlier.removed.map(shown).join(', ')}, was removed: ${KEEP_EARLIER} are kept)`
      : '';
    out(`  the previous run's evidence${when} was kept: ${shown(o.earlier.dir)}/${removed}`);
  } else if (o.replaced)
    out(
      `  the previous run's evidence was ` +
        `replaced${o.notKept ? `: it could not be kept under ${shown(path.join(outDir, EARLIER_DIR))}/ (${o.notKept})` : ''}`,
    );
  out();
}

/** Writes --out's reports (index.html, and each lab's report.html for `ids`); returns why they could not be (null when written). */
function writeIndex(outDir: string, ids: string[] = []): { written: string[] } | { error: string } {
  try {
    return { written: writeReports(outDir, ids) };
  } catch (e) {
    return { error: whyNotWritten(e) };
  }
}

async function runCommand(ids: string[], opts: RunOptions): Promise<number> {
  const labs = resolveLabIds(ids);
  const params = resolveParams(labs, opts.set);
  const jobs = parseJobs(opts.jobs);
  const bothFamilies = labs.some((l) => familiesOf(params.get(l.id) ?? {}).length > 1);
  if (opts.kernel !== undefined && bothFamilies)
    throw new TwlabError(
      'BAD_USAGE',
      '--kernel puts kernels side by side one family at a time: give family=ipv4 or family=ipv6 with it ' +
        '(or run family=ipv4,ipv6 without --kernel)',
    );
  if (opts.kernel !== undefined) return kernelsRunCommand(labs, params, jobs, opts);
  const isolation = assertReady();
  checkOutDir(opts.out); // before any question or lab: a bad --out is one line, at once (made once the answers are in)
  let predictions: Predictions | undefined;
  let classAnswers: ClassAnswers | undefined;
  if (typeof opts.predict === 'string') {
    const file = opts.predict;
    if (!fs.existsSync(file) && allLabs().some((l) => l.id === file.padStart(2, '0') || l.slug === file)) {
      throw new TwlabError(
        'BAD_USAGE',
        `--predict ${file}: that is a lab id, not a file of answers; put --predict after the lab ids (twlab run 03 05 --predict)`,
      );
    }
    const read = readPredictions(file, labs);
    if ('one' in read) predictions = read.one;
    else classAnswers = read.class;
  } else if (opts.predict) {
    if (!process.stdin.isTTY || !process.stderr.isTTY)
      throw new TwlabError(
        'BAD_USAGE',
        '--predict asks its questions on a terminal, and this is none: give the answers in a file instead (--predict answers.json; ' +
          "`twlab list -v` shows each lab's questions)",
      );
    if (!labs.some((l) => l.questions?.length))
      throw new TwlabError('BAD_USAGE', `none of ${labs.map((l) => l.id).join(', ')} asks questions`);
    predictions = await askOnTerminal(labs, process.stdin, process.stderr);
  }
  const outDir = prepareOutDir(opts.out);
  const messages = new LabMessages(opts.json);
  if (!opts.json) err(`twlab: running ${labs.map((l) => `${l.id} ${l.slug}`).join(', ')} (each in its own network namespace)`);
  const runner = new LabRunner();
  // each lab's report.html is written into its staging folder, so it replaces the old one with the evidence
  const outcomes = await withSignalForwarding(runner, () =>
    runner.run({
      labs,
      params,
      outDir,
      isolation,
      concurrency: jobs,
      onMessage: (m, family) => messages.take(runKey(m.lab, family), m),
      predictions,
      classAnswers,
      beforeReplace: (dir, result) => void writeLabReport(dir, result),
    }),
  );
  messages.done();
  for (const r of runner.restored) err(`twlab: put back ${shown(r)}: a run killed while replacing it had left it renamed aside`);
  for (const k of runner.keptAfterKill) {
    const where = k.earlier
      ? `kept it in ${shown(k.earlier.dir)}/`
      : `could not keep it under ${shown(path.join(outDir, EARLIER_DIR))}/ (${k.notKept ?? 'unknown'}) and removed it`;
    err(`twlab: a run killed while replacing ${shown(k.final)} had left its previous evidence at ${path.basename(k.left)}: ${where}`);
  }
  const saved = outcomes.filter((o) => o.dir);
  if (runner.interrupted) {
    // labs that finished before the signal have their new evidence and report: the index lists them
    const index = saved.length ? writeIndex(outDir) : null;
    throw interruptedError(runner.interrupted, {
      replaced: saved.map((o) => `${o.def.id} ${o.def.slug}${o.earlier ? ` (its previous run kept in ${shown(o.earlier.dir)}/)` : ''}`),
      index: index && 'error' in index ? index.error : null,
      untouched: outcomes.filter((o) => !o.dir).map((o) => `${o.def.id} ${o.def.slug}`),
    });
  }
  const results: LabResult[] = [];
  let failures = 0;
  for (const o of outcomes) {
    if (o.result) results.push(o.result);
    if (!opts.json && o.dir) {
      const lines = messages.printed(runKey(o.def.id, o.family)).map(paintVerdicts);
      // which family the lines measured, wherever it is not the usual IPv4 alone
      if (o.family && (bothFamilies || o.family !== 'ipv4'))
        lines.unshift(`==== ${o.def.id} ${o.def.slug} over ${familyLabel(o.family)} (${familyPair(o.family)})`, '');
      if (predictions && o.result?.questions?.length) lines.push('', ...formatPredictions(o.result).map(paintVerdicts));
      if (classAnswers && o.result?.class) lines.push('', ...formatClass(o.result, colour));
      printSaved(o, lines, outDir, !o.extraError);
    }
    if (o.dir && o.extraError)
      err(
        `twlab: lab ${o.def.id} ${o.def.slug}: its evidence is saved, but its report.html could not be written ` +
          `(${o.extraError.split('\n')[0]})`,
      );
    if (o.error) {
      failures++;
      const over = o.family && (bothFamilies || o.family !== 'ipv4') ? ` over ${familyLabel(o.family)}` : '';
      const earlier = fs.existsSync(path.join(outDir, o.family ? familyFolder(o.family) : '', labDirName(o.def)));
      err(
        `twlab: lab ${o.def.id} ${o.def.slug}${over} failed: ${o.error.message.split('\n')[0]}` +
          `${earlier ? '; its earlier evidence is left as it was' : ''}`,
      );
    }
  }
  if (!opts.json && bothFamilies) for (const line of familiesSideBySide(outcomes, outDir)) out(line);
  const index = writeIndex(outDir);
  if ('error' in index) {
    err(
      `twlab: ${shown(path.join(outDir, 'index.html'))} could not be written ` +
        `(${index.error})${saved.length ? `; the evidence of ${saved.map((o) => o.def.id).join(', ')} is saved` : ''}`,
    );
    failures++;
  } else if (!opts.json && saved.length) out(`Reports: ${shown(path.join(outDir, 'index.html'))} (and report.html in each lab folder)`);
  if (opts.json) out(formatJson(results, 6));
  return failures ? 1 : 0;
}

/** The key of one lab process's lines: its id, and its family where it has one. */
const runKey = (lab: string, family?: IpFamily): string => (family ? `${lab} ${family}` : lab);

/** `family=ipv4,ipv6`: the claims of each lab that ran in both families, a column per family, as `--kernel` shows kernels. */
function familiesSideBySide(outcomes: readonly LabOutcome[], outDir: string): string[] {
  const columns: KernelColumn[] = FAMILIES.map((family) => {
    const ran = outcomes.filter((o) => o.family === family && o.result && o.dir);
    return {
      kernel: ran[0]?.result?.kernel ?? '',
      host: true,
      folder: familyFolder(family),
      family,
      labs: new Map(ran.map((o) => [o.def.id, { dirName: path.basename(o.dir!), result: o.result! }])),
    };
  }).filter((c) => c.labs.size > 0);
  if (columns.length < 2) return [];
  return [
    `==== side by side: IPv4 and IPv6 (folders ${shown(outDir)}/ and ${shown(path.join(outDir, familyFolder('ipv6')))}/)\n`,
    ...renderComparisonText(columns, compareClaims(columns)),
    '',
  ];
}

/** `twlab run … --kernel 6.1,6.12,host`: every lab on every kernel named, then the side-by-side. */
async function kernelsRunCommand(
  labs: LabDefinition[],
  params: Map<string, Record<string, ParamValue>>,
  jobs: number | undefined,
  opts: RunOptions,
): Promise<number> {
  const specs = parseKernelList(opts.kernel!);
  if (opts.predict !== undefined)
    throw new TwlabError('BAD_USAGE', '--predict scores one kernel at a time; leave out --kernel (or run --predict on the host alone)');
  // the host's labs, and those run against another OS's stack, run in namespaces here
  const isolation = specs.some((s) => s.kind !== 'series' && s.kind !== 'exact') ? assertReady() : null;
  const say = (s: string): void => {
    if (!opts.json) err(`twlab: ${s}`);
  };
  // --out is checked (and made) once the kernels are known good, before anything is fetched or booted
  let outDir = '';
  const targets = await prepareKernels(specs, say, () => (outDir = prepareOutDir(opts.out)));
  const messages = new LabMessages(opts.json);
  const key = (t: KernelTarget, lab: string): string => `${t.release} ${lab}`;
  const where = (t: KernelTarget): string =>
    t.kind === 'host' ? `${t.release} (host)` : t.kind === 'stack' ? t.stack.label : `${t.release} (qemu, ${t.accel.toUpperCase()})`;
  say(`running ${labs.map((l) => `${l.id} ${l.slug}`).join(', ')} on ${targets.map(where).join(', ')}`);
  for (const t of targets) if (t.kind === 'guest' && t.accel === 'tcg') say(`${t.release}: ${t.accelWhy}`);
  const runner = new MatrixRunner();
  const t0 = performance.now();
  const runs = await withSignalForwarding(runner, () =>
    runner.run({
      targets,
      labs,
      params,
      outDir,
      isolation,
      concurrency: jobs,
      onMessage: (t, m) => messages.take(key(t, m.lab), m),
      log: (s) => (messages.tty ? undefined : say(s)),
    }),
  );
  messages.done();
  if (runner.interrupted) throw interruptedError(runner.interrupted);
  let failures = 0;
  for (const run of runs) {
    if (!opts.json) {
      const t = run.target;
      const how =
        t.kind === 'host'
          ? ' (host)'
          : t.kind === 'stack'
            ? ` — ${t.stack.label}, ${t.stack.how} (${(run.info.wallMs / 1000).toFixed(0)} s in all)`
            : ` (qemu ${run.info.accel.toUpperCase()}, booted in ${((run.info.bootMs ?? 0) / 1000).toFixed(1)} s, ` +
              `${(run.info.wallMs / 1000).toFixed(0)} s in all)`;
      out(`==== kernel ${t.release}${how}\n`);
    }
    for (const o of run.outcomes) {
      // each lab's report.html is written with the index, below
      if (!opts.json && o.dir) printSaved(o, messages.printed(key(run.target, o.def.id)).map(paintVerdicts), outDir, false);
      if (o.error) {
        failures++;
        err(`twlab: lab ${o.def.id} ${o.def.slug} on ${run.target.release} failed: ${o.error.message.split('\n')[0]}`);
      }
    }
  }
  // this run's kernels side by side (the index also shows kernels from earlier runs in --out)
  const columns: KernelColumn[] = runs.map((r) => ({
    kernel: r.outcomes.find((o) => o.result)?.result?.kernel ?? r.target.release,
    host: r.target.kind === 'host',
    folder: r.target.kind === 'host' ? '' : r.target.release,
    labs: new Map(
      r.outcomes.filter((o) => o.result && o.dir).map((o) => [o.def.id, { dirName: path.basename(o.dir!), result: o.result! }]),
    ),
  }));
  if (!opts.json && columns.length > 1) {
    out(`==== side by side (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    for (const line of renderComparisonText(columns, compareClaims(columns))) out(line);
    for (const { lab, hook, compared, changes } of compareLabItems(columns, labs)) {
      out(`\nLab ${lab}: ${changes.length} of ${compared} ${hook.items} changed between kernels${changes.length ? ':' : ''}`);
      for (const ch of changes.slice(0, 20))
        out(`  ${ch.cell}: ${ch.outcomes.map((x, i) => `${columns[i]!.kernel} ${x ?? '—'}`).join(' · ')}`);
      if (changes.length > 20) out(`  … ${changes.length - 20} more in the index`);
    }
    out();
  }
  const reports = writeIndex(
    outDir,
    labs.map((l) => l.id),
  );
  if ('error' in reports) {
    const saved = runs.flatMap((r) => r.outcomes.filter((o) => o.dir).map((o) => `${o.def.id} on ${r.target.release}`));
    err(
      `twlab: the HTML reports could not be written ` +
        `(${reports.error})${saved.length ? `; the evidence of ${saved.join(', ')} is saved` : '; no evidence was saved'}`,
    );
    failures++;
  } else if (!opts.json && reports.written.length)
    out(`Reports: ${shown(path.join(outDir, 'index.html'))} (the kernels side by side; report.html in each lab folder)`);
  if (opts.json)
    out(
      formatJson(
        labs.flatMap((l) => runs.map((r) => r.outcomes.find((o) => o.def.id === l.id)?.result).filter((x): x is LabResult => !!x)),
        6,
      ),
    );
  return failures ? 1 : 0;
}
