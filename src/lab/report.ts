// Reports: captures/NN-slug/report.html per lab and captures/index.html for the run — single
// offline files (inline CSS and SVG, no scripts, no fetches) a teacher can project.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeTcp } from '../capture/flows';
import { escapeXml as esc } from '../capture/html';
import { layoutLadders, renderLadderSvg, type TimelineEvent } from '../capture/ladder';
import { readPcap } from '../capture/pcap';
import { renderTimelineSvg, type TimelineInput } from '../capture/timeline-svg';
import { columnLabel, compareBindMatrix, compareClaims, labHref, type KernelColumn } from './compare';
import { allLabs } from './registry';
import type { QuestionResult } from './questions';
import type { LabResult, VariantResult } from './types';


const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}h3{margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f4}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
.verdict{font-weight:bold;padding:.1rem .4rem;border-radius:.3rem;white-space:nowrap}
.holds{background:#d7f0d0}.does-not-hold{background:#f8d0d0}.differs-by-OS{background:#fde9c0}.mixed{background:#e8dcf5}.not-tested{background:#e6e6e6}
.pre{font-size:.85rem;color:#444;margin:.2rem 0 0 0;padding-left:1rem}.pre .no{color:#a00;font-weight:bold}
.differs{outline:3px solid #c0392b;outline-offset:-3px}tr.row-differs>th:first-child{border-left:6px solid #c0392b}tr.row-untested>th:first-child{border-left:6px solid #bbb}
.meta{color:#555}.svgbox{overflow-x:auto;border:1px solid #eee;margin:.5rem 0}pre{background:#f7f7f7;padding:.5rem;overflow-x:auto}
.controls{margin:.5rem 0 0 0}.controls button{font-size:1rem;padding:.15rem .6rem}.status{font-family:ui-monospace,monospace;font-size:.85rem;margin-left:.5rem}
.right{background:#d7f0d0}.wrong{background:#f8d0d0}.skipped,.not-scored{background:#e6e6e6}
`;

function verdictBadge(v: string): string {
  return `<span class="verdict ${esc(v.replace(/ /g, '-'))}">${esc(v)}</span>`;
}

/**
 * A ladder a class can step through: the controls appear only when the page's script runs
 * (without scripts, or printed, the whole ladder shows). Each step reveals one more row, and the
 * status line gives each side's state at that point, the TIME_WAIT timer counting down.
 */
function stepper(svg: string): string {
  return `<div class="stepper"><div class="controls" hidden><button type="button" data-go="first" title="back to the start">|◀ start</button> <button type="button" data-go="prev" title="one step back">◀ back</button> <button type="button" data-go="next" title="what happens next?">next ▶</button> <button type="button" data-go="all" title="the whole ladder">all ▶|</button> <span class="status"></span></div><div class="svgbox">${svg}</div></div>`;
}

/** The stepping, inline: no fetches, nothing but this page. */
const STEPPER_SCRIPT = `<script>
(function () {
  function tw(label, since, now) {
    var m = /^TIME_WAIT ([0-9.]+) s$/.exec(label || '');
    return m ? 'TIME_WAIT, ' + Math.max(0, parseFloat(m[1]) - (now - since)).toFixed(1) + ' s left' : label;
  }
  document.querySelectorAll('.stepper').forEach(function (box) {
    var rows = Array.prototype.slice.call(box.querySelectorAll('g.row'));
    if (!rows.length) return;
    var controls = box.querySelector('.controls');
    var status = box.querySelector('.status');
    var at = 0;
    function show() {
      var left = '—', right = '—', leftAt = 0, rightAt = 0, now = 0;
      rows.forEach(function (r, i) {
        var on = i <= at;
        r.style.visibility = on ? 'visible' : 'hidden';
        if (!on) return;
        now = parseFloat(r.getAttribute('data-t'));
        if (r.getAttribute('data-left')) { left = r.getAttribute('data-left'); leftAt = now; }
        if (r.getAttribute('data-right')) { right = r.getAttribute('data-right'); rightAt = now; }
      });
      var frame = rows[at].getAttribute('data-frame');
      status.textContent = 'step ' + (at + 1) + '/' + rows.length + (frame ? ' · frame #' + frame : '') + ' · t=' + now.toFixed(3) + ' s · kernel: ' + tw(left, leftAt, now) + ' · peer: ' + tw(right, rightAt, now);
    }
    controls.hidden = false;
    controls.addEventListener('click', function (e) {
      var go = e.target && e.target.getAttribute && e.target.getAttribute('data-go');
      if (!go) return;
      at = go === 'first' ? 0 : go === 'prev' ? Math.max(0, at - 1) : go === 'next' ? Math.min(rows.length - 1, at + 1) : rows.length - 1;
      show();
    });
    show();
  });
})();
</script>`;

function questionsSection(result: LabResult): string {
  if (!result.questions?.length) return '';
  const frames = (q: QuestionResult): string =>
    q.frames
      .filter((f) => f.numbers.length)
      .map((f) => `<a href="${esc(f.pcap)}">${esc(f.pcap)}</a> ${esc(f.numbers.slice(0, 12).map((n) => `#${n}`).join(', '))}${f.numbers.length > 12 ? ' …' : ''}`)
      .join('; ');
  const rows = result.questions.map((q) => {
    const verdict = q.answer === null ? 'not scored' : q.prediction === undefined ? '' : q.prediction === null ? 'skipped' : q.correct ? 'right' : 'wrong';
    return `<tr><td>${esc(q.text)}<div class="meta">${esc(q.choices.join(' · '))}</div></td>${result.predictionScore ? `<td>${esc(q.prediction ?? '—')}</td>` : ''}<td><details><summary>the kernel's answer</summary><strong>${esc(q.answer ?? 'not scored')}</strong>${verdict ? ` <span class="verdict ${esc(verdict)}">${esc(verdict)}</span>` : ''}<div>${esc(q.answer === null ? `${q.notScored}. ${q.why}` : q.why)}</div>${frames(q) ? `<div class="meta">see ${frames(q)}</div>` : ''}</details></td></tr>`;
  });
  const s = result.predictionScore;
  return `<h2>Predict, then look</h2>
<p class="meta">Each answer comes from this run's own measurements${s ? `; the predictions scored ${s.correct}/${s.scored}` : ''}. Open an answer only after you have predicted it.</p>
<table><tr><th>question</th>${s ? '<th>predicted</th>' : ''}<th>answer</th></tr>
${rows.join('\n')}
</table>`;
}

function preconditionList(pre: LabResult['claims'][number]['preconditions'] | undefined): string {
  if (!pre?.length) return '';
  return `<ul class="pre">${pre.map((p) => `<li>${p.met ? 'met' : '<span class="no">not met</span>'}: ${esc(p.what)} — ${esc(p.measured)}</li>`).join('')}</ul>`;
}

/** Observations for humans: long arrays summarised (lab 01's 6,000 cells stay in result.json). */
function summarise(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 20 ? `[${value.length} entries — see result.json]` : value.map(summarise);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, summarise(v)]));
  return value;
}

function timelineFor(events: TimelineEvent[], variant: string): TimelineInput {
  const mine = events.filter((e) => (e as { variant?: string | null }).variant === variant);
  const start = mine.find((e) => e.kind === 'variant')?.at ?? mine[0]?.at ?? 0;
  const end = [...mine].reverse().find((e) => e.kind === 'variant')?.at ?? mine[mine.length - 1]?.at ?? start + 1;
  const kernel = mine
    .filter((e): e is Extract<TimelineEvent, { kind: 'kernel' }> => e.kind === 'kernel')
    .map((e) => ({ at: e.at, socket: `${e.local}→${e.remote}`, state: e.state }));
  const peer = mine
    .filter((e): e is Extract<TimelineEvent, { kind: 'peer-state' }> => e.kind === 'peer-state')
    .map((e) => ({ at: e.at, conn: `${e.local}→${e.remote}`, to: e.to }));
  const syscalls = mine.filter((e) => e.kind === 'syscall') as unknown as TimelineInput['syscalls'];
  return { start, end, kernel, peer, syscalls };
}

function variantSection(dir: string, v: VariantResult, events: TimelineEvent[], maxLadders: number): string {
  const parts: string[] = [`<h3>Variant <code>${esc(v.name)}</code></h3>`];
  if (Object.keys(v.params).length) parts.push(`<p class="meta">${Object.entries(v.params).map(([k, val]) => `${esc(k)} = ${esc(String(val))}`).join(' · ')}</p>`);
  const counters = (v.observations.counters ?? {}) as Record<string, number>;
  const obs = { ...v.observations };
  delete obs.counters;
  parts.push(`<details><summary>Observations</summary><pre>${esc(JSON.stringify(summarise(obs), null, 2))}</pre></details>`);
  if (Object.keys(counters).length) {
    parts.push(`<details><summary>Counters that changed (${Object.keys(counters).length})</summary><pre>${esc(Object.entries(counters).map(([k, n]) => `${k} ${n > 0 ? '+' : ''}${n}`).join('\n'))}</pre></details>`);
  }
  parts.push(`<h4>State timeline</h4><div class="svgbox">${renderTimelineSvg(timelineFor(events, v.name))}</div>`);
  if (v.pcap) {
    const file = path.join(dir, v.pcap);
    parts.push(`<p>Capture: <a href="${esc(v.pcap)}">${esc(v.pcap)}</a> (${v.frames} frames; opens in Wireshark)${v.pcapng ? `; with twlab's marks as packet comments: <a href="${esc(v.pcapng)}">${esc(v.pcapng)}</a>` : ''}</p>`);
    if (fs.existsSync(file) && v.frames > 0) {
      const ladders = layoutLadders(analyzeTcp(readPcap(file)), events);
      for (const l of ladders.slice(0, maxLadders)) parts.push(stepper(renderLadderSvg(l)));
      if (ladders.length > maxLadders) parts.push(`<p class="meta">… ${ladders.length - maxLadders} more connections in the capture</p>`);
    }
  }
  return parts.join('\n');
}

export function renderLabReport(dir: string, result: LabResult, events: TimelineEvent[], opts: { maxLadders?: number } = {}): string {
  const def = allLabs().find((l) => l.id === result.lab);
  const rows = (o: Record<string, unknown>): string => Object.entries(o).map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(Array.isArray(v) ? v.join(',') : String(v))}</code></td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab ${esc(result.lab)} — ${esc(result.title)}</title><style>${CSS}</style></head>
<body>
<p class="meta"><a href="../index.html">all labs</a></p>
<h1>Lab ${esc(result.lab)} — ${esc(result.title)}</h1>
${def ? `<p><strong>Question.</strong> ${esc(def.question)}</p>` : ''}
<p class="meta">kernel ${esc(result.kernel)} · started ${esc(result.startedAt)} · ${result.durationMs} ms</p>
${questionsSection(result)}
<h2>Claims</h2>
<table><tr><th>id</th><th>claim</th><th>source (stated for)</th><th>verdict</th><th>evidence (preconditions checked)</th></tr>
${result.claims.map((c) => `<tr id="claim-${esc(c.id)}"><td>${esc(c.id)}</td><td>${esc(c.text)}</td><td>${esc(c.source)}${c.scope ? ` <span class="meta">(${esc(c.scope)})</span>` : ''}</td><td>${verdictBadge(c.verdict)}</td><td>${esc(c.evidence)}${preconditionList(c.preconditions)}</td></tr>`).join('\n')}
</table>
${result.conclusion.length ? `<h2>Conclusion</h2><pre>${esc(result.conclusion.join('\n'))}</pre>` : ''}
<h2>Parameters and sysctls</h2>
<table>${rows(result.params)}</table>
<table>${rows(result.sysctls)}</table>
<h2>Variants</h2>
${result.variants.map((v) => variantSection(dir, v, events, opts.maxLadders ?? 3)).join('\n')}
${STEPPER_SCRIPT}
</body></html>
`;
}

export function renderIndex(labs: Array<{ dirName: string; result: LabResult }>): string {
  const row = ({ dirName, result }: { dirName: string; result: LabResult }): string =>
    `<tr><td>${esc(result.lab)}</td><td><a href="${esc(dirName)}/report.html">${esc(result.title)}</a></td><td>${result.claims.map((c) => `${esc(c.id)} ${verdictBadge(c.verdict)}`).join(' ')}</td><td class="meta">${esc(result.startedAt)}</td></tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — results</title><style>${CSS}</style></head>
<body><h1>twlab — results</h1>
<p class="meta">kernel ${esc(labs[0]?.result.kernel ?? '?')}</p>
<table><tr><th>lab</th><th>title</th><th>claims</th><th>run</th></tr>
${labs.map(row).join('\n')}
</table></body></html>
`;
}

/**
 * The lab folders (NN-slug with a result.json) directly in `dir`. A folder whose result.json cannot
 * be read as a lab's result (empty, cut short, not one) is left out and named in `skipped`.
 */
function labEntries(dir: string, skipped: string[] = []): Array<{ dirName: string; result: LabResult }> {
  const out: Array<{ dirName: string; result: LabResult }> = [];
  if (!fs.existsSync(dir)) return out;
  for (const dirName of fs.readdirSync(dir).sort()) {
    if (!/^\d{2}-/.test(dirName)) continue;
    const resultFile = path.join(dir, dirName, 'result.json');
    if (!fs.existsSync(resultFile)) continue;
    const result = readResult(resultFile);
    if (typeof result === 'string') skipped.push(`${path.join(dir, dirName)} (${result})`);
    else out.push({ dirName, result });
  }
  return out;
}

/** A lab's result.json, or why it is not one. */
function readResult(file: string): LabResult | string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return `result.json unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (!text.trim()) return 'result.json is empty';
  let r: Partial<LabResult>;
  try {
    r = JSON.parse(text) as Partial<LabResult>;
  } catch {
    return `result.json is not whole JSON (${text.length} bytes; cut short?)`;
  }
  if (!r || typeof r !== 'object' || typeof r.lab !== 'string' || !Array.isArray(r.claims) || !Array.isArray(r.variants)) return 'result.json is not a lab result';
  if (!r.claims.every((c) => c && typeof c.id === 'string' && typeof c.verdict === 'string') || !r.variants.every((v) => v && typeof v.name === 'string')) return 'result.json has claims or variants that are not whole';
  return r as LabResult;
}

/** What a guest's kernel.json says about its run (src/kernels/guest.ts). */
interface KernelInfo {
  package?: string | null;
  version?: string | null;
  accel?: string;
  bootMs?: number | null;
  wallMs?: number;
}

/**
 * The kernels with evidence under `outDir`: the host's lab folders directly in it, then each
 * guest kernel's folder (named by its `uname -r`, `twlab run --kernel`).
 */
export function readColumns(outDir: string, skipped: string[] = []): KernelColumn[] {
  const columns: KernelColumn[] = [];
  const toMap = (labs: Array<{ dirName: string; result: LabResult }>): KernelColumn['labs'] => new Map(labs.map((l) => [l.result.lab, l]));
  const host = labEntries(outDir, skipped);
  if (host.length) columns.push({ kernel: host[0]!.result.kernel, host: true, folder: '', labs: toMap(host) });
  if (!fs.existsSync(outDir)) return columns;
  const guests = fs
    .readdirSync(outDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && (/^\d+\.\d+/.test(e.name) || /^(netbsd|freebsd)-/.test(e.name)))
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const folder of guests) {
    const labs = labEntries(path.join(outDir, folder), skipped);
    if (labs.length) columns.push({ kernel: labs[0]!.result.kernel, host: false, folder, labs: toMap(labs) });
  }
  return columns;
}

function kernelInfo(outDir: string, c: KernelColumn): KernelInfo {
  if (c.host) return {};
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir, c.folder, 'kernel.json'), 'utf8')) as KernelInfo;
  } catch {
    return {};
  }
}

/** index.html for several kernels: the claims side by side, lab 01's cells that changed, and each kernel's labs. */
export function renderMatrixIndex(columns: readonly KernelColumn[], infos: readonly KernelInfo[] = []): string {
  const rows = compareClaims(columns);
  const bind = compareBindMatrix(columns);
  const differing = rows.filter((r) => r.differs).length;
  const untested = rows.filter((r) => !r.differs && r.partlyUntested).length;
  const head = columns.map((c) => `<th>${c.folder ? `<a href="${esc(c.folder)}/index.html">${esc(columnLabel(c))}</a>` : esc(columnLabel(c))}</th>`).join('');
  const kernelRows = columns
    .map((c, i) => {
      const info = infos[i] ?? {};
      const how = c.host
        ? 'the host'
        : info.accel === 'stack'
          ? `${esc(info.package ?? '?')} · ${esc(info.version ?? '')} · the host's labs, its TCP/IP stack in a helper process${info.wallMs ? ` · ${(info.wallMs / 1000).toFixed(0)} s in all` : ''}`
          : `${esc(info.package ?? '?')} ${esc(info.version ?? '')} · qemu ${info.accel === 'kvm' ? 'KVM' : 'TCG'}${info.bootMs ? ` · booted in ${(info.bootMs / 1000).toFixed(1)} s` : ''}${info.wallMs ? ` · ${(info.wallMs / 1000).toFixed(0)} s in all` : ''} · <a href="${esc(c.folder)}/console.log">console.log</a>`;
      const started = [...c.labs.values()].map((l) => l.result.startedAt).sort()[0] ?? '';
      return `<tr><th>${esc(columnLabel(c))}</th><td>${how}</td><td>${c.labs.size} labs</td><td class="meta">${esc(started)}</td></tr>`;
    })
    .join('\n');
  const claimRows = rows
    .map((r) => {
      const cells = r.cells
        .map((x) => (x ? `<td class="${x.differs ? 'differs' : ''}" title="${esc(x.evidence)}"><a href="${esc(x.href)}">${verdictBadge(x.verdict)}</a></td>` : '<td class="meta">—</td>'))
        .join('');
      return `<tr class="${r.differs ? 'row-differs' : r.partlyUntested ? 'row-untested' : ''}"><th>${esc(r.claim)}</th><td>${esc(r.lab)} ${esc(r.slug)}</td><td>${esc(r.text)}</td>${cells}</tr>`;
    })
    .join('\n');
  const LIMIT = 300;
  const bindRows = bind.changes
    .slice(0, LIMIT)
    .map((ch) => `<tr><td><code>${esc(ch.cell)}</code></td>${ch.outcomes.map((o) => `<td><code>${o === null ? '—' : esc(o)}</code></td>`).join('')}</tr>`)
    .join('\n');
  const bindSection = columns.filter((c) => c.labs.has('01')).length < 2
    ? ''
    : `<h2>Lab 01: bind-matrix cells that changed between kernels</h2>
<p>${bind.changes.length} of ${bind.compared} cells measured on more than one kernel have another outcome (B's <code>bind()</code>, and the <code>listen()</code> calls where both binds succeeded).${bind.changes.length > LIMIT ? ` The first ${LIMIT} are shown; result.json has them all.` : ''}</p>
${bind.changes.length ? `<table><tr><th>cell</th>${head}</tr>\n${bindRows}\n</table>` : ''}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — results on ${columns.length} kernels</title><style>${CSS}</style></head>
<body><h1>twlab — the same labs on ${columns.length} kernels</h1>
<table><tr><th>kernel</th><th>how it ran</th><th>labs</th><th>first lab started</th></tr>
${kernelRows}
</table>
<h2>Claims side by side</h2>
<p>${differing ? `${differing} of ${rows.length} claims have verdicts that differ between kernels: their rows are marked red, and the verdicts that differ are outlined.` : `No claim has different verdicts on the kernels that judged it (${rows.length} claims).`}${untested ? ` ${untested} could not be judged on every kernel (grey mark: "not tested" there, its evidence names the precondition that failed); "not tested" is no verdict and differs from nothing.` : ''} Each verdict links to that kernel's report; hover for its evidence.</p>
<table><tr><th>claim</th><th>lab</th><th>text</th>${head}</tr>
${claimRows}
</table>
${bindSection}
<h2>Labs</h2>
<ul>${columns.map((c) => `<li>${esc(columnLabel(c))}: ${[...c.labs.values()].map((l) => `<a href="${esc(labHref(c, l.dirName))}">${esc(l.result.lab)}</a>`).join(' ')}</li>`).join('')}</ul>
</body></html>
`;
}

/** Writes `file` whole or not at all: a temporary beside it, renamed over it; removed if writing fails (a full disk). */
function writeAtomically(file: string, text: string): void {
  const temporary = `${file}.${process.pid}`;
  try {
    fs.writeFileSync(temporary, text);
    fs.renameSync(temporary, file);
  } catch (e) {
    fs.rmSync(temporary, { force: true });
    throw e;
  }
}

/** Writes report.html in one lab's folder from its result.json and timeline.json (the runner does it before the folder replaces the old one). */
export function writeLabReport(dir: string, result: LabResult): string {
  let events: TimelineEvent[] = [];
  try {
    events = (JSON.parse(fs.readFileSync(path.join(dir, 'timeline.json'), 'utf8')) as { events: TimelineEvent[] }).events;
  } catch {
    // a report without states
  }
  const file = path.join(dir, 'report.html');
  writeAtomically(file, renderLabReport(dir, result, events));
  return file;
}

/**
 * Writes report.html into each lab folder under `outDir` (all, or `ids`) — the host's and every
 * guest kernel's — an index.html per guest kernel, and index.html over all of them: the host's
 * list of labs when it is the only kernel, the side-by-side of every kernel otherwise.
 */
export function writeReports(outDir: string, ids?: readonly string[], skipped: string[] = []): string[] {
  const written: string[] = [];
  if (!fs.existsSync(outDir)) return written;
  const columns = readColumns(outDir, skipped);
  for (const c of columns) {
    const dir = path.join(outDir, c.folder);
    for (const { dirName, result } of c.labs.values()) {
      if (ids && !ids.includes(result.lab)) continue;
      try {
        written.push(writeLabReport(path.join(dir, dirName), result));
      } catch (e) {
        // a disk that cannot take it stops here; a result that cannot be drawn is named and passed over
        if (['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
        skipped.push(`${path.join(dir, dirName)} (its report could not be drawn from result.json: ${(e as Error).message})`);
      }
    }
    if (c.folder) {
      writeAtomically(path.join(dir, 'index.html'), renderIndex([...c.labs.values()]));
      written.push(path.join(dir, 'index.html'));
    }
  }
  const index = path.join(outDir, 'index.html');
  const single = columns.length === 1 && columns[0]!.host;
  writeAtomically(index, columns.length === 0 || single ? renderIndex([...(columns[0]?.labs.values() ?? [])]) : renderMatrixIndex(columns, columns.map((c) => kernelInfo(outDir, c))));
  written.push(index);
  return written;
}
