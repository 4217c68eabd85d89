// twlab's command line: parses, calls the library, prints. Nothing else lives here.
import { Command, CommanderError, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PcapError } from './capture/pcap';
import { showCapture, ShowError, type ShowIO, type ShowOptions } from './capture/show';
import type { LabMessage } from './lab/context';
import { TwlabError } from './lab/errors';
import { formatJson } from './lab/json';
import { describeParam, ParamError, resolveParams } from './lab/params';
import { assertReady, checks, isolation, liveCheck } from './lab/preflight';
import { allLabs, resolveLabIds } from './lab/registry';
import { interruptedError, LabRunner, withSignalForwarding } from './lab/runner';
import { formatCourse, writeCourseHtml } from './lab/course';
import { checkOutDir, prepareOutDir } from './lab/outdir';
import { askOnTerminal, formatPredictions, readPredictions } from './lab/predict';
import { formatClass, type ClassAnswers } from './lab/classroom';
import { EARLIER_DIR, KEEP_EARLIER } from './lab/earlier';
import type { Predictions } from './lab/questions';
import { writeLabReport, writeReports } from './lab/report';
import { scopeLabel } from './lab/claims';
import { compareBindMatrix, compareClaims, renderComparisonText, type KernelColumn } from './lab/compare';
import { labClaims, labDirName, type LabDefinition, type LabResult } from './lab/types';
import type { ParamValue } from './lab/params';
import { parseKernelList } from './kernels/debian';
import { kernelChecks, kernelListing } from './kernels/doctor';
import { MatrixRunner, prepareKernels, type KernelTarget } from './kernels/matrix';
import { ensureNetbsd } from './kernels/netbsd';
import { prepareFreebsd } from './kernels/stacks';

/**
 * Standard output, written synchronously in 64 KiB chunks: a listing of a million frames piped
 * into a slow reader must wait for it, not pile up in memory. A closed pipe (`| head`) ends us quietly.
 */
class StdoutLines {
  #buf: string[] = [];
  #size = 0;
  line(s: string): void {
    this.#buf.push(s, '\n');
    this.#size += s.length + 1;
    if (this.#size >= 1 << 16) this.flush();
  }
  flush(): void {
    if (this.#size === 0) return;
    let data = Buffer.from(this.#buf.join(''));
    this.#buf = [];
    this.#size = 0;
    while (data.length) {
      try {
        const n = fs.writeSync(1, data);
        data = data.subarray(n);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2); // the reader is behind: wait for it
        else if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
        else throw e;
      }
    }
  }
}

const stdout = new StdoutLines();
const out = (s = ''): void => stdout.line(s);
const err = (s: string): boolean => {
  stdout.flush(); // in order with what came before on a terminal
  return process.stderr.write(s + '\n');
};

/** Colour on a terminal that wants it (NO_COLOR unset). */
const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;

const VERDICT_COLOUR: Record<string, string> = { HOLDS: '32', 'DOES NOT HOLD': '31', 'DIFFERS BY OS': '33', MIXED: '35', 'NOT TESTED': '90' };

/** A lab's printed line with its verdict word (and a prediction's ✓/✗) coloured, on a terminal. */
function paintVerdicts(line: string): string {
  if (!colour) return line;
  return line
    .replace(/^(\s*\S+ )(HOLDS|DOES NOT HOLD|DIFFERS BY OS|MIXED|NOT TESTED)(:)/, (_m, a: string, v: string, b: string) => `${a}\x1b[1;${VERDICT_COLOUR[v]}m${v}\x1b[0m${b}`)
    .replace(/ ✓$/, ' \x1b[32m✓\x1b[0m')
    .replace(/ ✗$/, ' \x1b[31m✗\x1b[0m');
}

/** A path as printed: relative to here when it is below here, else absolute (never ../../tmp/…). */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? p : rel;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function listCommand(opts: { json?: boolean; verbose?: boolean }): void {
  const labs = allLabs();
  if (opts.json) {
    out(JSON.stringify(labs.map((l) => ({ id: l.id, slug: l.slug, title: l.title, shows: l.shows, question: l.question, params: l.params.map((p) => ({ ...p, validate: undefined })), claims: labClaims(l).map((c) => ({ ...c, scope: scopeLabel(c.scope) })) })), null, 2));
    return;
  }
  for (const l of labs) {
    out(`${l.id}  ${l.slug.padEnd(22)} ${l.title}`);
    out(`    shows: ${l.shows}`);
    if (opts.verbose) {
      out(`    question: ${l.question}`);
      for (const p of l.params) out(`    --set ${describeParam(p)}`);
      for (const c of labClaims(l)) out(`    ${c.id}: ${c.text} [${c.source}; stated for ${scopeLabel(c.scope)}${c.modality === 'may' ? '; a claim of possibility: holds when some valid trial shows it' : ''}]`);
      for (const q of l.questions ?? []) out(`    question ${q.id}: ${q.text} (${q.choices.map((c, i) => `${i + 1}) ${c}`).join(', ')})`);
    }
  }
  if (!opts.verbose) out(`\n\`twlab list -v\` shows each lab's parameters and claims.`);
}

function doctorCommand(): number {
  let failed = 0;
  const all = checks();
  const iso = isolation();
  if (all.every((c) => c.ok || c.warning) && iso) all.push(liveCheck(iso));
  all.push(...kernelChecks());
  for (const c of all) {
    const mark = c.ok ? 'ok  ' : c.warning ? 'warn' : 'FAIL';
    out(`[${mark}] ${c.name}: ${c.detail}`);
    if (!c.ok) out(`       fix: ${c.fix}`);
    if (!c.ok && !c.warning) failed++;
  }
  out(failed ? `\n${failed} check(s) failed: labs cannot run until they are fixed.` : '\nReady: labs can run here.');
  return failed ? 1 : 0;
}

interface RunOptions {
  set: string[];
  json?: boolean;
  out: string;
  jobs?: string;
  predict?: string | boolean;
  kernel?: string;
}

async function runCommand(ids: string[], opts: RunOptions): Promise<number> {
  const labs = resolveLabIds(ids);
  const params = resolveParams(labs, opts.set);
  let jobs: number | undefined;
  if (opts.jobs !== undefined) {
    if (!/^\d+$/.test(opts.jobs) || Number(opts.jobs) < 1) throw new TwlabError('BAD_USAGE', `--jobs takes a whole number ≥ 1, not ${JSON.stringify(opts.jobs)}`);
    jobs = Number(opts.jobs);
  }
  if (opts.kernel !== undefined) return kernelsRunCommand(labs, params, jobs, opts);
  const isolation = assertReady();
  checkOutDir(opts.out); // before any question or lab: a bad --out is one line, at once (made once the answers are in)
  let predictions: Predictions | undefined;
  let classAnswers: ClassAnswers | undefined;
  if (typeof opts.predict === 'string') {
    const file = opts.predict;
    if (!fs.existsSync(file) && allLabs().some((l) => l.id === file.padStart(2, '0') || l.slug === file)) {
      throw new TwlabError('BAD_USAGE', `--predict ${file}: that is a lab id, not a file of answers; put --predict after the lab ids (twlab run 03 05 --predict)`);
    }
    const read = readPredictions(file, labs);
    if ('one' in read) predictions = read.one;
    else classAnswers = read.class;
  } else if (opts.predict) {
    if (!process.stdin.isTTY || !process.stderr.isTTY) throw new TwlabError('BAD_USAGE', "--predict asks its questions on a terminal, and this is none: give the answers in a file instead (--predict answers.json; `twlab list -v` shows each lab's questions)");
    if (!labs.some((l) => l.questions?.length)) throw new TwlabError('BAD_USAGE', `none of ${labs.map((l) => l.id).join(', ')} asks questions`);
    predictions = await askOnTerminal(labs, process.stdin, process.stderr);
  }
  const outDir = prepareOutDir(opts.out);
  const tty = !opts.json && process.stderr.isTTY;
  const printed = new Map<string, string[]>();
  let lastProgress = '';
  const lastPlain = new Map<string, number>();
  const onMessage = (m: LabMessage): void => {
    if (opts.json) return;
    if (m.type === 'print') printed.set(m.lab, [...(printed.get(m.lab) ?? []), m.text]);
    else if (m.type === 'progress') {
      if (tty) {
        lastProgress = `[${m.lab}] ${m.text}`;
        process.stderr.write(`\r\x1b[K${lastProgress}`);
      } else if (Date.now() - (lastPlain.get(m.lab) ?? 0) > 5000) {
        lastPlain.set(m.lab, Date.now());
        err(`[${m.lab}] ${m.text}`);
      }
    }
  };
  if (!opts.json) err(`twlab: running ${labs.map((l) => `${l.id} ${l.slug}`).join(', ')} (each in its own network namespace)`);
  const runner = new LabRunner();
  // each lab's report.html is written into its staging folder, so it replaces the old one with the evidence
  const outcomes = await withSignalForwarding(runner, () => runner.run({ labs, params, outDir, isolation, concurrency: jobs, onMessage, predictions, classAnswers, beforeReplace: (dir, result) => void writeLabReport(dir, result) }));
  if (tty && lastProgress) process.stderr.write('\r\x1b[K');
  for (const r of runner.restored) err(`twlab: put back ${shown(r)}: a run killed while replacing it had left it renamed aside`);
  for (const k of runner.keptAfterKill) {
    const where = k.earlier ? `kept it in ${shown(k.earlier.dir)}/` : `could not keep it under ${shown(path.join(outDir, EARLIER_DIR))}/ (${k.notKept ?? 'unknown'}) and removed it`;
    err(`twlab: a run killed while replacing ${shown(k.final)} had left its previous evidence at ${path.basename(k.left)}: ${where}`);
  }
  const saved = outcomes.filter((o) => o.dir);
  if (runner.interrupted) {
    // labs that finished before the signal have their new evidence and report: the index lists them
    const index = saved.length ? writeIndex(outDir) : null;
    throw interruptedError(runner.interrupted, { replaced: saved.map((o) => `${o.def.id} ${o.def.slug}${o.earlier ? ` (its previous run kept in ${shown(o.earlier.dir)}/)` : ''}`), index, untouched: outcomes.filter((o) => !o.dir).map((o) => `${o.def.id} ${o.def.slug}`) });
  }
  const results: LabResult[] = [];
  let failures = 0;
  for (const o of outcomes) {
    if (o.result) results.push(o.result);
    if (!opts.json && o.dir) {
      // a failed lab's verdict lines are not shown: nothing of that run was kept
      for (const line of printed.get(o.def.id) ?? []) out(paintVerdicts(line));
      if (predictions && o.result?.questions?.length) {
        out();
        for (const line of formatPredictions(o.result)) out(paintVerdicts(line));
      }
      if (classAnswers && o.result?.class) {
        out();
        for (const line of formatClass(o.result, colour)) out(line);
      }
      const files = ['result.json', 'timeline.json', ...o.result!.variants.flatMap((v) => [v.pcap, v.pcapng]).filter((p): p is string => !!p)];
      out(`\nEvidence: ${shown(o.dir)}/ (${files.join(', ')}${o.extraError ? '' : ', report.html'})`);
      if (o.earlier) out(`  the previous run's evidence${o.earlier.startedAt ? ` (${o.earlier.startedAt})` : ''} was kept: ${shown(o.earlier.dir)}/${o.earlier.removed.length ? ` (the oldest kept run, ${o.earlier.removed.map(shown).join(', ')}, was removed: ${KEEP_EARLIER} are kept)` : ''}`);
      else if (o.replaced) out(`  the previous run's evidence was replaced${o.notKept ? `: it could not be kept under ${shown(path.join(outDir, EARLIER_DIR))}/ (${o.notKept})` : ''}`);
      out();
    }
    if (o.dir && o.extraError) err(`twlab: lab ${o.def.id} ${o.def.slug}: its evidence is saved, but its report.html could not be written (${o.extraError.split('\n')[0]})`);
    if (o.error) {
      failures++;
      err(`twlab: lab ${o.def.id} ${o.def.slug} failed: ${o.error.message.split('\n')[0]}${fs.existsSync(path.join(outDir, labDirName(o.def))) ? '; its earlier evidence is left as it was' : ''}`);
    }
  }
  const index = writeIndex(outDir);
  if (!opts.json && index === null && saved.length) out(`Reports: ${shown(path.join(outDir, 'index.html'))} (and report.html in each lab folder)`);
  if (index !== null) {
    err(`twlab: ${shown(path.join(outDir, 'index.html'))} could not be written (${index})${saved.length ? `; the evidence of ${saved.map((o) => o.def.id).join(', ')} is saved` : ''}`);
    failures++;
  }
  if (opts.json) out(formatJson(results, 6));
  return failures ? 1 : 0;
}

/** Writes --out's index.html; returns why it could not (null when written). */
function writeIndex(outDir: string): string | null {
  try {
    writeReports(outDir, []);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'no space left on device' : ((e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
}

/** `twlab run … --kernel 6.1,6.12,host`: every lab on every kernel named, then the side-by-side. */
async function kernelsRunCommand(labs: LabDefinition[], params: Map<string, Record<string, ParamValue>>, jobs: number | undefined, opts: RunOptions): Promise<number> {
  const specs = parseKernelList(opts.kernel!);
  if (opts.predict !== undefined) throw new TwlabError('BAD_USAGE', '--predict scores one kernel at a time; leave out --kernel (or run --predict on the host alone)');
  // the host's labs, and those run against another OS's stack, run in namespaces here
  const isolation = specs.some((s) => s.kind !== 'series' && s.kind !== 'exact') ? assertReady() : null;
  const say = (s: string): void => {
    if (!opts.json) err(`twlab: ${s}`);
  };
  // --out is checked (and made) once the kernels are known good, before anything is fetched or booted
  let outDir = '';
  const targets = await prepareKernels(specs, say, () => (outDir = prepareOutDir(opts.out)));
  const tty = !opts.json && process.stderr.isTTY;
  const printed = new Map<string, string[]>();
  const key = (t: KernelTarget, lab: string): string => `${t.release} ${lab}`;
  let lastProgress = '';
  const lastPlain = new Map<string, number>();
  const onMessage = (t: KernelTarget, m: LabMessage): void => {
    if (opts.json) return;
    const k = key(t, m.lab);
    if (m.type === 'print') printed.set(k, [...(printed.get(k) ?? []), m.text]);
    else if (m.type === 'progress') {
      if (tty) {
        lastProgress = `[${t.release} ${m.lab}] ${m.text}`;
        process.stderr.write(`\r\x1b[K${lastProgress}`);
      } else if (Date.now() - (lastPlain.get(k) ?? 0) > 5000) {
        lastPlain.set(k, Date.now());
        err(`[${t.release} ${m.lab}] ${m.text}`);
      }
    }
  };
  say(`running ${labs.map((l) => `${l.id} ${l.slug}`).join(', ')} on ${targets.map((t) => (t.kind === 'host' ? `${t.release} (host)` : t.kind === 'stack' ? t.stack.label : `${t.release} (qemu, ${t.accel.toUpperCase()})`)).join(', ')}`);
  for (const t of targets) if (t.kind === 'guest' && t.accel === 'tcg') say(`${t.release}: ${t.accelWhy}`);
  const runner = new MatrixRunner();
  const t0 = performance.now();
  const runs = await withSignalForwarding(runner, () => runner.run({ targets, labs, params, outDir, isolation, concurrency: jobs, onMessage, log: (s) => (tty ? undefined : say(s)) }));
  if (tty && lastProgress) process.stderr.write('\r\x1b[K');
  if (runner.interrupted) throw interruptedError(runner.interrupted);
  let failures = 0;
  for (const run of runs) {
    if (!opts.json) {
      const t = run.target;
      const how = t.kind === 'host' ? ' (host)' : t.kind === 'stack' ? ` — ${t.stack.label}, ${t.stack.how} (${(run.info.wallMs / 1000).toFixed(0)} s in all)` : ` (qemu ${run.info.accel.toUpperCase()}, booted in ${((run.info.bootMs ?? 0) / 1000).toFixed(1)} s, ${(run.info.wallMs / 1000).toFixed(0)} s in all)`;
      out(`==== kernel ${t.release}${how}\n`);
    }
    for (const o of run.outcomes) {
      if (!opts.json && o.dir) {
        // a failed lab's verdict lines are not shown: nothing of that run was kept
        for (const line of printed.get(key(run.target, o.def.id)) ?? []) out(line);
        const files = ['result.json', 'timeline.json', ...o.result!.variants.flatMap((v) => [v.pcap, v.pcapng]).filter((p): p is string => !!p)];
        out(`\nEvidence: ${shown(o.dir)}/ (${files.join(', ')})\n`);
      }
      if (o.error) {
        failures++;
        err(`twlab: lab ${o.def.id} ${o.def.slug} on ${run.target.release} failed: ${o.error.message.split('\n')[0]}`);
      }
    }
  }
  // this run's kernels side by side (the index also shows kernels from earlier runs in --out)
  const columns: KernelColumn[] = runs.map((r) => ({
    kernel: r.outcomes.find((o) => o.result)?.result!.kernel ?? r.target.release,
    host: r.target.kind === 'host',
    folder: r.target.kind === 'host' ? '' : r.target.release,
    labs: new Map(r.outcomes.filter((o) => o.result && o.dir).map((o) => [o.def.id, { dirName: path.basename(o.dir!), result: o.result! }])),
  }));
  if (!opts.json && columns.length > 1) {
    out(`==== side by side (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
    for (const line of renderComparisonText(columns, compareClaims(columns))) out(line);
    const bind = compareBindMatrix(columns);
    if (columns.filter((c) => c.labs.has('01')).length > 1) {
      out(`\nLab 01: ${bind.changes.length} of ${bind.compared} bind-matrix cells changed between kernels${bind.changes.length ? ':' : ''}`);
      for (const ch of bind.changes.slice(0, 20)) out(`  ${ch.cell}: ${ch.outcomes.map((x, i) => `${columns[i]!.kernel} ${x ?? '—'}`).join(' · ')}`);
      if (bind.changes.length > 20) out(`  … ${bind.changes.length - 20} more in the index`);
    }
    out();
  }
  try {
    const written = writeReports(outDir, labs.map((l) => l.id));
    if (!opts.json && written.length) out(`Reports: ${shown(path.join(outDir, 'index.html'))} (the kernels side by side; report.html in each lab folder)`);
  } catch (e) {
    const saved = runs.flatMap((r) => r.outcomes.filter((o) => o.dir).map((o) => `${o.def.id} on ${r.target.release}`));
    err(`twlab: the HTML reports could not be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${saved.length ? `; the evidence of ${saved.join(', ')} is saved` : '; no evidence was saved'}`);
    failures++;
  }
  if (opts.json) out(formatJson(labs.flatMap((l) => runs.map((r) => r.outcomes.find((o) => o.def.id === l.id)?.result).filter((x): x is LabResult => !!x)), 6));
  return failures ? 1 : 0;
}

/** `twlab report`: the reports rebuilt from --out; a damaged lab folder is skipped and named. */
function reportCommand(ids: string[], outOption: string): number {
  const only = ids.length ? resolveLabIds(ids).map((d) => d.id) : undefined;
  const outDir = evidenceDir(outOption);
  const skipped: string[] = [];
  let written: string[];
  try {
    written = writeReports(outDir, only, skipped);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'no space left on device' : code === 'EROFS' ? 'read-only filesystem' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message);
    throw new TwlabError('BAD_USAGE', `cannot write the reports into ${outDir} (${why})${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`);
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

function kernelsCommand(opts: { json?: boolean }): void {
  const l = kernelListing();
  if (opts.json) {
    out(JSON.stringify(l, null, 2));
    return;
  }
  out(`Cached in ${l.cacheDir}:`);
  if (!l.cached.length) out('  (none yet: `twlab run … --kernel 6.1` fetches what it needs)');
  for (const k of l.cached) out(`  ${k.release.padEnd(24)} ${k.package} ${k.version ?? ''} · ${(k.bytes / 1e6).toFixed(0)} MB · fetched ${k.fetchedAt} in ${(k.fetchMs / 1000).toFixed(1)} s`);
  out('\nDebian kernels apt can fetch (generic amd64 flavour), newest first:');
  if (!Object.keys(l.available).length) out("  (none: apt knows no linux-image-*-amd64-unsigned package; run `apt-get update`)");
  const cached = new Set(l.cached.map((k) => k.release));
  for (const [series, ks] of Object.entries(l.available)) {
    const shown = ks.slice(0, 6).map((k, i) => `${k.release}${i === 0 ? ' (newest)' : ''}${cached.has(k.release) ? ' [cached]' : ''}`);
    out(`  ${series.padEnd(5)} ${shown.join(', ')}${ks.length > 6 ? `, … ${ks.length - 6} older` : ''}`);
  }
  out(`\nNetBSD's TCP/IP stack (--kernel netbsd), a rump kernel built from ${l.netbsd.pinned}:`);
  out(l.netbsd.built ? `  ${l.netbsd.built.label} · ${(l.netbsd.built.bytes / 1e6).toFixed(0)} MB in ${l.netbsd.built.dir} · built ${l.netbsd.built.builtAt} in ${(l.netbsd.built.buildMs / 60000).toFixed(1)} min from ${l.netbsd.built.source}` : `  not built yet: the first \`--kernel netbsd\` run builds it into ${l.netbsd.cacheDir}${l.netbsd.sourceEnv ? ` from TWLAB_NETBSD_SRC=${l.netbsd.sourceEnv}` : ' (sources from github.com, or TWLAB_NETBSD_SRC)'}`);
  const fb = l.freebsd;
  out(`\nFreeBSD's TCP/IP stack (--kernel freebsd), F-Stack (FreeBSD 13.0's network code over DPDK) built from ${fb.pinned}:`);
  out(fb.built ? `  ${fb.built.label} · ${(fb.built.bytes / 1e6).toFixed(0)} MB in ${fb.built.dir} · built ${fb.built.builtAt} in ${(fb.built.buildMs.total / 60000).toFixed(1)} min from ${fb.built.source}` : `  not built yet: the first \`--kernel freebsd\` run builds it into ${fb.cacheDir}${fb.sourceEnv ? ` from TWLAB_FREEBSD_SRC=${fb.sourceEnv}` : ' (source from github.com, or TWLAB_FREEBSD_SRC)'}${fb.missing.length ? `; first: apt-get install ${fb.missing.join(' ')}` : ''}`);
  out('\n`twlab run <ids> --kernel 6.1,6.12,host,netbsd,freebsd` (or `--kernel all`) takes the newest of each series; name an exact one as 6.1.0-56 or 6.12.115.');
}

interface ShowCliOptions extends ShowOptions {
  out: string;
  /** with a lab id: the captures of that guest kernel (twlab run --kernel) */
  kernel?: string;
}

/** The evidence folder of a guest kernel under `out`: its exact release, or the one release that starts with `name` (6.1 → 6.1.0-57-amd64). */
function kernelFolder(out: string, name: string): string {
  const folders = fs.existsSync(out) ? fs.readdirSync(out).filter((f) => (/^\d+\.\d+/.test(f) || /^(netbsd|freebsd)-/.test(f)) && fs.statSync(path.join(out, f)).isDirectory()) : [];
  if (folders.includes(name)) return name;
  const matches = folders.filter((f) => f.startsWith(name + '.') || f.startsWith(name + '-') || f.startsWith(name + '+'));
  if (matches.length === 1) return matches[0]!;
  throw new TwlabError('BAD_USAGE', matches.length ? `--kernel ${name} matches ${matches.join(', ')}; name one` : `no evidence for kernel ${name} in ${out}${folders.length ? ` (there is: ${folders.join(', ')})` : ''}; run \`twlab run <ids> --kernel ${name}\` first`);
}

function showCommand(target: string, opts: ShowCliOptions): number {
  const io: ShowIO = { out, warn: (line) => err(`twlab: warning: ${line}`) };
  const show = (file: string): void => {
    try {
      showCapture(file, { ...opts, colour: process.stdout.isTTY && !process.env.NO_COLOR, columns: process.stdout.isTTY ? process.stdout.columns : undefined }, io);
    } catch (e) {
      if (e instanceof ShowError) throw new TwlabError('BAD_USAGE', e.message);
      throw e;
    }
  };
  // a capture file (`-`: standard input), or a lab id whose captures are shown variant by variant
  if (target !== '-' && !fs.existsSync(target) && /^[a-z0-9-]+$/i.test(target)) {
    const [def] = resolveLabIds([target]);
    const dir = path.resolve(opts.out, opts.kernel ? kernelFolder(path.resolve(opts.out), opts.kernel) : '', labDirName(def!));
    if (!fs.existsSync(dir)) throw new TwlabError('BAD_PCAP', `no captures for lab ${def!.id} in ${dir}; run \`twlab run ${def!.id}\` first`);
    const pcaps = fs.readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort();
    if (pcaps.length === 0) throw new TwlabError('BAD_PCAP', `no captures (*.pcap) in ${dir}; run \`twlab run ${def!.id}\` again to make them`);
    for (const f of pcaps) {
      out(`== ${def!.id} ${def!.slug} · ${f}`);
      show(path.join(dir, f));
      out();
    }
    return 0;
  }
  show(target);
  return 0;
}

export function buildProgram(): Command {
  const program = new Command('twlab')
    .description('A TIME_WAIT and linger laboratory: the Linux kernel\'s TCP against a scriptable userspace peer, with pcap evidence and verdicts.')
    .version(require('../../package.json').version as string)
    // commander's own errors (an unknown option, a missing argument) as one line like every other
    .configureOutput({ outputError: (message, write) => write(`twlab: ${message.replace(/^error: /, '').trim()} (run \`twlab --help\` for usage)\n`) })
    .exitOverride();
  program
    .command('list')
    .description('list the labs: id, slug, title and what each shows')
    .option('-v, --verbose', 'also show parameters (with defaults) and claims')
    .option('--json', 'print the lab descriptions as JSON')
    .action((opts: { json?: boolean; verbose?: boolean }) => listCommand(opts));
  program
    .command('run')
    .description('run labs, each in its own network namespace, in parallel; evidence goes to --out')
    .argument('<ids...>', 'lab ids (01, 1, bind-matrix, 01-bind-matrix) or `all`')
    .option('--set <name=value>', 'set a lab parameter; applies to every lab in the run that declares it (repeatable)', collect, [])
    .option('--json', 'print only a JSON array of results (the result.json of each lab) on stdout')
    .option('--out <dir>', 'directory for evidence (one folder per lab, replaced on success)', 'captures')
    .option('--predict [answers]', 'predict first: ask each lab\'s questions on this terminal before the run (or take them from a JSON file: {"03": {"q1": "EADDRINUSE"}}), then score them against what the kernel did')
    .addOption(new Option('-j, --jobs <n>', 'labs to run at the same time, per kernel (default: all of them on the host, four in a guest — they mostly wait on kernel timers; their busy steps share CPUs − 1 slots)'))
    .option('--kernel <list>', "run on these kernels side by side: host, a Debian series (6.1, 6.12) or an exact release (6.1.0-57), netbsd or freebsd (those OSes' TCP/IP stacks, built on first use), comma-separated, or all (= 6.1,6.12,host,netbsd,freebsd); Debian kernels boot under qemu, evidence in --out/<uname -r>/ (--out/netbsd-7.99.34/, --out/freebsd-13.0/)")
    .action(async (ids: string[], opts: RunOptions) => {
      process.exitCode = await runCommand(ids, opts);
    });
  program
    .command('kernels')
    .description('list the Debian kernels cached for --kernel, those apt can fetch, and the NetBSD and FreeBSD stacks')
    .option('--json', 'print the listing as JSON')
    .option('--build <stack>', 'build (once) what --kernel <stack> runs, now: netbsd (its rump kernel) or freebsd (F-Stack and its DPDK)')
    .action(async (opts: { json?: boolean; build?: string }) => {
      if (opts.build === 'freebsd') {
        const s = await prepareFreebsd((line) => err(`twlab: ${line}`));
        out(`${s.label}: ${path.dirname(path.dirname(s.helper))} (helper ${s.helper})`);
        return;
      }
      if (opts.build === 'netbsd') {
        const s = await ensureNetbsd((line) => err(`twlab: ${line}`));
        out(`${s.label}: ${s.dir} (helper ${s.helper})`);
        return;
      }
      if (opts.build !== undefined) throw new TwlabError('BAD_USAGE', `--build takes netbsd or freebsd, not ${JSON.stringify(opts.build)}`);
      kernelsCommand(opts);
    });
  program
    .command('show')
    .description('read a capture as ladder diagrams (kernel left, peer right; flags, relative seq/ack, marks, states), a per-connection summary, or a per-frame listing; streams captures of any size')
    .argument('<capture|lab>', 'a pcap or pcapng file (twlab evidence, tcpdump -w, Wireshark, dumpcap: raw IP, Ethernet or Linux cooked link types), or a lab id to show its captures')
    .option('--out <dir>', 'where lab captures are (with a lab id)', 'captures')
    .option('--summary', 'one line per connection: incarnations, who closed first, how it ended, who holds TIME_WAIT, strays, retransmissions, duration, the close pattern')
    .option('--explain', 'the summary, with each connection\'s close pattern explained and the lab that shows it')
    .option('--conn <n|a:p-b:p>', 'draw one connection: its number in --summary, or its four-tuple')
    .option('--list', 'a flat per-frame listing instead of ladder diagrams')
    .option('--kernel <release>', 'with a lab id: the captures a guest kernel made (twlab run --kernel), e.g. 6.1 or 6.1.0-57-amd64')
    .action((file: string, opts: ShowCliOptions) => {
      process.exitCode = showCommand(file, opts);
    });
  program
    .command('report')
    .description('rebuild the HTML reports (report.html per lab, index.html) from evidence already in --out')
    .argument('[ids...]', 'labs to rebuild (default: every lab folder found)')
    .option('--out <dir>', 'directory holding the evidence', 'captures')
    .action((ids: string[], opts: { out: string }) => {
      process.exitCode = reportCommand(ids, opts.out);
    });
  program
    .command('course')
    .description('a suggested order through the labs: what each teaches and what to look at in its capture')
    .option('--html', 'write course.html into --out, linking each lab\'s report')
    .option('--out <dir>', 'where the evidence is (and course.html goes)', 'captures')
    .action((opts: { html?: boolean; out: string }) => {
      if (opts.html) {
        const file = writeCourseHtml(prepareOutDir(opts.out));
        out(shown(file));
      } else for (const line of formatCourse()) out(line);
      process.exitCode = 0;
    });
  program
    .command('doctor')
    .description('check that this machine can run labs, with a fix for each failing check')
    .action(() => {
      process.exitCode = doctorCommand();
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `twlab … | head` closes our stdout early: that is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    stdout.flush();
  } catch (e) {
    stdout.flush();
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help/version)
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof TwlabError || e instanceof ParamError || e instanceof PcapError) {
      err(`twlab: ${e.message}`);
      process.exitCode = e instanceof TwlabError ? e.exitCode : 2;
      return;
    }
    const code = (e as { code?: string }).code;
    if (code === 'ADDON_MISSING') {
      err(`twlab: ${(e as Error).message}`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}
