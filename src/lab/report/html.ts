// Reports: captures/NN-slug/report.html per lab and captures/index.html for the run — single
// offline files (inline CSS, SVG and one small script, no fetches) a teacher can project or print.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeTcp } from '../../capture/flows';
import { escapeXml as esc } from '../../capture/html';
import { layoutLadders, renderLadderSvg, type Ladder } from '../../capture/ladder';
import { readTimelineEvents, type KernelEvent, type PeerStateEvent, type SyscallEvent, type TimelineEvent } from '../../capture/timeline';
import { readPcap } from '../../capture/pcap';
import { renderTimelineSvg, type TimelineInput } from '../../capture/timeline-svg';
import { columnLabel, columnsAre, compareClaims, compareLabItems, labHref, type KernelColumn } from './compare';
import { FAMILIES, familyFolder, familyLabel, familyPair } from '../api/family';
import { writeCourseHtml } from './course';
import { allLabs } from '../run/registry';
import type { QuestionResult } from '../api/questions';
import type { LabResult, VariantResult } from '../api/types';

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}h3{margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f4}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
.verdict{font-weight:bold;padding:.1rem .4rem;border-radius:.3rem;white-space:nowrap}
.holds{background:#d7f0d0}.does-not-hold{background:#f8d0d0}.differs-by-OS{background:#fde9c0}.mixed{background:#e8dcf5}
.not-tested{background:#e6e6e6}
.pre{font-size:.85rem;color:#444;margin:.2rem 0 0 0;padding-left:1rem}.pre .no{color:#a00;font-weight:bold}
.differs{outline:3px solid #c0392b;outline-offset:-3px}
tr.row-differs>th:first-child{border-left:6px solid #c0392b}tr.row-untested>th:first-child{border-left:6px solid #bbb}
.meta{color:#555}.svgbox{overflow-x:auto;border:1px solid #eee;margin:.5rem 0}pre{background:#f7f7f7;padding:.5rem;overflow-x:auto}
.controls{margin:.5rem 0 0 0}.controls button{font-size:1rem;padding:.15rem .6rem}
.status{font-family:ui-monospace,monospace;font-size:.85rem;margin-left:.5rem}
.right{background:#d7f0d0}.wrong{background:#f8d0d0}.skipped,.not-scored{background:#e6e6e6}
.stepper:focus{outline:2px solid #57a;outline-offset:2px}.stepper:focus-visible{outline:2px solid #57a}
g.row:target line,g.row.hl line{stroke-width:4}g.row:target text,g.row.hl text{font-weight:bold}
pre.output{font-size:.78rem;line-height:1.25}.same{color:#555;font-size:.9rem;margin:.2rem 0 1rem 0}
table.class td.n{text-align:right}.bar{display:inline-block;height:.7rem;background:#9bc;vertical-align:middle}
@media print{
 body{max-width:none;margin:0;padding:0;font-size:10pt;line-height:1.3}
 .controls,.noprint{display:none!important}
 g.row{visibility:visible!important}
 .svgbox{overflow:visible;border:none;break-inside:avoid}
 svg{max-width:100%;height:auto}
 pre{white-space:pre-wrap;overflow:visible;break-inside:auto}
 pre.output{white-space:pre-wrap;overflow-wrap:anywhere;font-size:6.5pt}
 details:not(.more)::details-content{content-visibility:visible;display:block}
 details>summary{list-style:none;font-weight:bold}
 h2,h3,h4{break-after:avoid}
 table{break-inside:auto}tr{break-inside:avoid}
 a{color:inherit;text-decoration:none}
}
`;

function verdictBadge(v: string): string {
  return `<span class="verdict ${esc(v.replace(/ /g, '-'))}">${esc(v)}</span>`;
}

/**
 * A ladder, whole, that a class can also step through: the controls appear only when the page's
 * script runs (without scripts, or printed, the whole ladder shows). Stepping reveals one row at
 * a time, and the status line gives each side's state at that point, the TIME_WAIT timer
 * counting down; the arrow keys step the ladder that has the focus.
 */
function stepper(svg: string): string {
  return (
    `<div class="stepper" tabindex="0"><div class="controls" hidden><button type="button" data-go="first" title="step through ` +
    `from the start (Home)">▶ step through</button> <button type="button" data-go="prev" title="one step back (←)">◀ back</button> ` +
    `<button type="button" data-go="next" title="what happens next? (→ or space)">next ▶</button> <button type="button" ` +
    `data-go="all" title="the whole ladder (End)">whole ladder</button> <span class="status"></span></div><div ` +
    `class="svgbox">${svg}</div></div>`
  );
}

/** The stepping and the frame links, inline: no fetches, nothing but this page. */
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
    var at = rows.length - 1;
    var whole = true;
    function show() {
      var left = '—', right = '—', leftAt = 0, rightAt = 0, now = 0;
      rows.forEach(function (r, i) {
        var on = i <= at;
        r.style.visibility = on ? 'visible' : 'hidden';
        if (!on) return;
        now = parseFloat(r.getAttribute('data-t'));
        if (r.getAttribute('data-left')) { left = r.getAttribute('data-left').replace(/.* → /, ''); leftAt = now; }
        if (r.getAttribute('data-right')) { right = r.getAttribute('data-right').replace(/.* → /, ''); rightAt = now; }
      });
      var frame = rows[at].getAttribute('data-frame');
      var where = whole
        ? 'the whole ladder (' + rows.length + ' steps) · ▶ or → steps through it'
        : 'step ' + (at + 1) + '/' + rows.length;
      var states = box.getAttribute('data-left-role') + ': ' + tw(left, leftAt, now) + ' · ' +
        box.getAttribute('data-right-role') + ': ' + tw(right, rightAt, now);
      status.textContent = where + (frame ? ' · frame #' + frame : '') + ' · t=' + now.toFixed(3) + ' s · ' + states;
    }
    function go(to) {
      if (to === 'first') { at = 0; whole = false; }
      else if (to === 'prev') { at = whole ? rows.length - 1 : Math.max(0, at - 1); whole = false; }
      else if (to === 'next') { at = whole ? 0 : Math.min(rows.length - 1, at + 1); whole = at === rows.length - 1 && whole; }
      else { at = rows.length - 1; whole = true; }
      show();
    }
    var svg = box.querySelector('svg');
    box.setAttribute('data-left-role', (svg && svg.getAttribute('data-left-role')) || 'left');
    box.setAttribute('data-right-role', (svg && svg.getAttribute('data-right-role')) || 'right');
    controls.hidden = false;
    controls.addEventListener('click', function (e) {
      var to = e.target && e.target.getAttribute && e.target.getAttribute('data-go');
      if (to) go(to);
    });
    box.addEventListener('keydown', function (e) {
      var to = { ArrowRight: 'next', ' ': 'next', j: 'next', ArrowLeft: 'prev', k: 'prev', Home: 'first', End: 'all' }[e.key];
      if (!to) return;
      e.preventDefault();
      go(to);
    });
    show();
  });
  // a frame link (#variant-fN) opens what hides its row and marks it
  function target() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (!el) return;
    for (var d = el.parentNode; d; d = d.parentNode) if (d.tagName === 'DETAILS') d.open = true;
    el.style.visibility = 'visible';
    document.querySelectorAll('g.row.hl').forEach(function (g) { g.classList.remove('hl'); });
    el.classList.add('hl');
    el.scrollIntoView({ block: 'center' });
  }
  window.addEventListener('hashchange', target);
  target();
  // printed, everything shows: answers and collapsed ladders opened, every row visible
  var opened = [];
  window.addEventListener('beforeprint', function () {
    document.querySelectorAll('details:not([open]):not(.more)').forEach(function (d) { d.open = true; opened.push(d); });
    document.querySelectorAll('g.row').forEach(function (g) { g.style.visibility = 'visible'; });
  });
  window.addEventListener('afterprint', function () { opened.splice(0).forEach(function (d) { d.open = false; }); });
})();
</script>`;

/** The anchor of a frame's row in a variant's ladder: `<variant>-f<n>` (the pcap's name without .pcap). */
export const frameAnchor = (pcap: string, n: number): string => `${pcap.replace(/\.pcap(ng)?$/, '')}-f${n}`;

function questionsSection(result: LabResult, drawn: ReadonlySet<string>): string {
  if (!result.questions?.length) return '';
  // each frame number links to its row in the ladder below (when that connection is drawn) or names the capture
  const frames = (q: QuestionResult): string =>
    q.frames
      .filter((f) => f.numbers.length)
      .map((f) => {
        const shown = f.numbers
          .slice(0, 12)
          .map((n) => (drawn.has(frameAnchor(f.pcap, n)) ? `<a href="#${esc(frameAnchor(f.pcap, n))}">#${n}</a>` : `#${n}`));
        return `<a href="${esc(f.pcap)}">${esc(f.pcap)}</a> ${shown.join(', ')}${f.numbers.length > 12 ? ' …' : ''}`;
      })
      .join('; ');
  const rows = result.questions.map((q) => {
    const verdict =
      q.answer === null
        ? 'not scored'
        : q.prediction === undefined
          ? ''
          : q.prediction === null
            ? 'skipped'
            : q.correct
              ? 'right'
              : 'wrong';
    const question = `<td>${esc(q.text)}<div class="meta">${esc(q.choices.join(' · '))}</div></td>`;
    const predicted = result.predictionScore ? `<td>${esc(q.prediction ?? '—')}</td>` : '';
    const badge = verdict ? ` <span class="verdict ${esc(verdict)}">${esc(verdict)}</span>` : '';
    const why = `<div>${esc(q.answer === null ? `${q.notScored}. ${q.why}` : q.why)}</div>`;
    const see = frames(q) ? `<div class="meta">see ${frames(q)}</div>` : '';
    const kernel = `<strong>${esc(q.answer ?? 'not scored')}</strong>`;
    const answer = `<details><summary>the kernel's answer</summary>${kernel}${badge}${why}${see}</details>`;
    return `<tr>${question}${predicted}<td>${answer}</td></tr>`;
  });
  const s = result.predictionScore;
  return `<h2>Predict, then look</h2>
<p class="meta">Each answer comes from this run's own measurements${s ? `; the predictions scored ${s.correct}/${s.scored}` : ''}.
Open an answer only after you have predicted it; its frame numbers lead to the ladder.</p>
<table><tr><th>question</th>${s ? '<th>predicted</th>' : ''}<th>answer</th></tr>
${rows.join('\n')}
</table>
${classSection(result)}`;
}

/** A class's predictions: per question, how many chose each answer (who, on hover), beside the kernel's; each student's score. */
function classSection(result: LabResult): string {
  const c = result.class;
  if (!c) return '';
  const n = c.students.length;
  const qs = c.questions
    .map((q) => {
      const cells = q.choices
        .map((x) => {
          const right = x.choice === q.answer;
          const bar = `<span class="bar" style="width:${Math.round((x.students.length / Math.max(1, n)) * 12)}rem"></span>`;
          const choice = `<td>${esc(x.choice)}${right ? ' ✓' : ''}</td>`;
          const who = `<td class="meta">${esc(x.students.join(', '))}</td>`;
          return `<tr class="${right ? 'right' : ''}">${choice}<td class="n">${x.students.length}</td><td>${bar}</td>${who}</tr>`;
        })
        .join('');
      const skipped = q.skipped.length
        ? `<tr><td class="meta">skipped</td><td class="n">${q.skipped.length}</td><td></td><td ` +
          `class="meta">${esc(q.skipped.join(', '))}</td></tr>`
        : '';
      const right = q.answer !== null ? ` · right: ${q.right}/${q.scored}` : '';
      return `<h4>${esc(q.id)}. ${esc(q.text)}</h4>
<p>the kernel: <strong>${esc(q.answer ?? 'not scored (a precondition failed)')}</strong>${right}</p>
<table class="class"><tr><th>answer</th><th>students</th><th></th><th>who</th></tr>${cells}${skipped}</table>`;
    })
    .join('\n');
  const scores = c.students
    .map(
      (st) =>
        `<tr><td>${esc(st.name)}</td><td class="n">${st.correct}/${st.scored}</td>` +
        `<td class="meta">${st.answered < c.questions.length ? `${c.questions.length - st.answered} skipped` : ''}</td></tr>`,
    )
    .join('');
  return `<h3>The class's predictions (${n} student${n === 1 ? '' : 's'})</h3>
${qs}
<h4>Scores</h4>
<table class="class"><tr><th>student</th><th>right</th><th></th></tr>${scores}</table>`;
}

function preconditionList(pre: LabResult['claims'][number]['preconditions'] | undefined): string {
  if (!pre?.length) return '';
  const item = (p: (typeof pre)[number]): string =>
    `<li>${p.met ? 'met' : '<span class="no">not met</span>'}: ${esc(p.what)} — ${esc(p.measured)}</li>`;
  return `<ul class="pre">${pre.map(item).join('')}</ul>`;
}

/** Observations for humans: long arrays summarised (lab 01's 6,000 cells stay in result.json). */
function summarise(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 20 ? `[${value.length} entries — see result.json]` : value.map(summarise);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, summarise(v)]));
  return value;
}

function timelineFor(events: TimelineEvent[], variant: string): TimelineInput {
  const mine = events.filter((e) => e.variant === variant);
  const start = mine.find((e) => e.kind === 'variant')?.at ?? mine[0]?.at ?? 0;
  const end = [...mine].reverse().find((e) => e.kind === 'variant')?.at ?? mine[mine.length - 1]?.at ?? start + 1;
  const kernel = mine
    .filter((e): e is KernelEvent => e.kind === 'kernel')
    .map((e) => ({ at: e.at, socket: `${e.local}→${e.remote}${e.inode ? ` #${e.inode}` : ''}`, state: e.state }));
  const peer = mine
    .filter((e): e is PeerStateEvent => e.kind === 'peer-state')
    .map((e) => ({ at: e.at, conn: `${e.local}→${e.remote}`, to: e.to }));
  const syscalls = mine.filter((e): e is SyscallEvent => e.kind === 'syscall');
  return { start, end, kernel, peer, syscalls };
}

/** What makes two ladders "the same" for a reader: rows, labels, marks and states, not ports or times. */
function shapeOf(l: Ladder): string {
  return l.rows
    .map((r) =>
      [
        r.kind,
        r.leftToRight,
        r.label.replace(/ \([0-9.]+ m?s\)$/, ''),
        r.marks.join('+'),
        (r.leftState ?? '').replace(/ [0-9.]+ s$/, ''),
        (r.rightState ?? '').replace(/ [0-9.]+ s$/, ''),
      ].join('|'),
    )
    .join('\n');
}

/** ladders of different shapes drawn per variant; the rest are listed under the one they repeat */
const MAX_SHAPES = 4;
/** at most this many ladders in a variant's section (lab 15 has hundreds of connections) */
const MAX_LADDERS = 30;

/**
 * A variant: parameters, observations, counters, the state timeline and its connections' ladders. `anchors` collects the frame rows drawn.
 */
function variantSection(dir: string, v: VariantResult, events: TimelineEvent[], anchors: Set<string>): string {
  const parts: string[] = [`<h3 id="variant-${esc(v.name)}">Variant <code>${esc(v.name)}</code></h3>`];
  if (Object.keys(v.params).length)
    parts.push(
      `<p class="meta">${Object.entries(v.params)
        .map(([k, val]) => `${esc(k)} = ${esc(String(val))}`)
        .join(' · ')}</p>`,
    );
  const counters = (v.observations.counters ?? {}) as Record<string, number>;
  const obs = { ...v.observations };
  delete obs.counters;
  parts.push(`<details class="more"><summary>Observations</summary><pre>${esc(JSON.stringify(summarise(obs), null, 2))}</pre></details>`);
  if (Object.keys(counters).length) {
    parts.push(
      `<details><summary>Counters that changed (${Object.keys(counters).length})</summary><pre>${esc(
        Object.entries(counters)
          .map(([k, n]) => `${k} ${n > 0 ? '+' : ''}${n}`)
          .join('\n'),
      )}</pre></details>`,
    );
  }
  const mine = events.filter((e) => (e as { variant?: string | null }).variant === v.name);
  const tl = timelineFor(events, v.name);
  if (tl.kernel.some((k) => k.state !== null && k.state !== 'LISTEN') || tl.peer.length)
    parts.push(`<h4>State timeline</h4><div class="svgbox">${renderTimelineSvg(tl)}</div>`);
  else
    parts.push(
      v.frames === 0
        ? `<p class="meta">No TCP connection in this variant's socket table, and nothing crossed the wire: ${NOTHING_ON_WIRE}.</p>`
        : `<p class="meta">No TCP connection in this variant's socket table: see the capture.</p>`,
    );
  if (v.pcap) {
    const file = path.join(dir, v.pcap);
    parts.push(
      `<p>Capture: <a href="${esc(v.pcap)}">${esc(v.pcap)}</a> (${v.frames} frames; opens in ` +
        `Wireshark)${v.pcapng ? `; with twlab's marks as packet comments: <a href="${esc(v.pcapng)}">${esc(v.pcapng)}</a>` : ''}</p>`,
    );
    if (fs.existsSync(file) && v.frames > 0) {
      const ladders = layoutLadders(analyzeTcp(readPcap(file)), mine);
      const id = v.pcap.replace(/\.pcap$/, '');
      const draw = (l: Ladder): string => {
        for (const r of l.rows) if (r.kind === 'segment' && !r.elided) anchors.add(frameAnchor(v.pcap!, r.number));
        return stepper(renderLadderSvg(l, { id }));
      };
      // one ladder per shape; the connections that went the same way are listed (and drawn, folded) under it
      const shapes = new Map<string, Ladder[]>();
      for (const l of ladders) {
        const k = shapeOf(l);
        shapes.set(k, [...(shapes.get(k) ?? []), l]);
      }
      let drawn = 0;
      let shapeCount = 0;
      for (const group of shapes.values()) {
        if (shapeCount >= MAX_SHAPES || drawn >= MAX_LADDERS) break;
        shapeCount++;
        const [first, ...same] = group;
        parts.push(draw(first!));
        drawn++;
        if (same.length) {
          const inner = same.slice(0, Math.max(0, MAX_LADDERS - drawn));
          drawn += inner.length;
          parts.push(
            `<details class="more same"><summary>The same on ${same.length} more connection${same.length === 1 ? '' : 's'}: ` +
              `${esc(same.map((l) => l.left).join(', '))}</summary>${inner.map(draw).join('\n')}</details>`,
          );
        }
      }
      const left = ladders.length - [...shapes.values()].slice(0, shapeCount).reduce((n, g) => n + g.length, 0);
      if (left > 0)
        parts.push(
          `<p class="meta">… ${left} more connections in the capture, differently shaped: <code>twlab ` +
            `show ${esc(v.pcap)} --summary</code>, then <code>--conn N</code></p>`,
        );
    }
  }
  return parts.join('\n');
}

/** What the lab printed: its tables and its conclusion, as on the terminal. */
function outputSection(result: LabResult): string {
  if (!result.output?.length) return result.conclusion.length ? `<h2>Conclusion</h2><pre>${esc(result.conclusion.join('\n'))}</pre>` : '';
  return `<h2>What the run printed</h2>
<p class="meta">As <code>twlab run ${esc(result.lab)}</code> printed it: the tables and the conclusion.</p>
<pre class="output">${esc(result.output.join('\n'))}</pre>`;
}

/** why a variant of bind() and listen() calls has no capture */
const NOTHING_ON_WIRE = 'bind() and listen() put nothing on it';

function claimRow(c: LabResult['claims'][number]): string {
  const source = `${esc(c.source)}${c.scope ? ` <span class="meta">(${esc(c.scope)})</span>` : ''}`;
  const evidence = `${esc(c.evidence)}${preconditionList(c.preconditions)}`;
  const cells = `<td>${esc(c.id)}</td><td>${esc(c.text)}</td><td>${source}</td><td>${verdictBadge(c.verdict)}</td><td>${evidence}</td>`;
  return `<tr id="claim-${esc(c.id)}">${cells}</tr>`;
}

export function renderLabReport(dir: string, result: LabResult, events: TimelineEvent[]): string {
  const def = allLabs().find((l) => l.id === result.lab);
  const rows = (o: Record<string, unknown>): string =>
    Object.entries(o)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(Array.isArray(v) ? v.join(',') : String(v))}</code></td></tr>`)
      .join('');
  // the variants first: the answers link to the ladder rows they draw
  const anchors = new Set<string>();
  const variants = result.variants.map((v) => variantSection(dir, v, events, anchors)).join('\n');
  const over = result.family ? ` · over ${familyLabel(result.family)} (${esc(familyPair(result.family))})` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab ${esc(result.lab)} — ${esc(result.title)}</title><style>${CSS}</style></head>
<body>
<p class="meta noprint"><a href="../index.html">all labs</a> · <a href="../course.html">the course</a></p>
<h1>Lab ${esc(result.lab)} — ${esc(result.title)}</h1>
${def ? `<p><strong>Question.</strong> ${esc(def.question)}</p>` : ''}
<p class="meta">kernel ${esc(result.kernel)}${over} · started ${esc(result.startedAt)} · ${result.durationMs} ms</p>
${questionsSection(result, anchors)}
<h2>Claims</h2>
<table><tr><th>id</th><th>claim</th><th>source (stated for)</th><th>verdict</th><th>evidence (preconditions checked)</th></tr>
${result.claims.map(claimRow).join('\n')}
</table>
${outputSection(result)}
<h2>Parameters and sysctls</h2>
<table>${rows(result.params)}</table>
<table>${rows(result.sysctls)}</table>
<h2>Variants</h2>
${variants}
${STEPPER_SCRIPT}
</body></html>
`;
}

const COURSE_LINK = ' · <a href="course.html">a course through the labs</a> (an order to teach them in, what each asks)';

export function renderIndex(labs: Array<{ dirName: string; result: LabResult }>, opts: { course?: boolean } = {}): string {
  const row = ({ dirName, result }: { dirName: string; result: LabResult }): string =>
    `<tr><td>${esc(result.lab)}</td><td><a href="${esc(dirName)}/report.html">${esc(result.title)}</a></td><td>${result.claims
      .map(
        (c) =>
          `<div><a href="${esc(dirName)}/report.html#claim-${esc(c.id)}">${esc(c.id)}</a> ${verdictBadge(c.verdict)} ` +
          `<span class="meta">${esc(c.text)}</span></div>`,
      )
      .join('')}</td><td class="meta">${esc(result.startedAt)}</td></tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — results</title><style>${CSS}</style></head>
<body><h1>twlab — results</h1>
<p class="meta">kernel ${esc(labs[0]?.result.kernel ?? '?')}${opts.course === false ? '' : COURSE_LINK}</p>
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
  if (!r || typeof r !== 'object' || typeof r.lab !== 'string' || !Array.isArray(r.claims) || !Array.isArray(r.variants))
    return 'result.json is not a lab result';
  if (
    !r.claims.every((c) => c && typeof c.id === 'string' && typeof c.verdict === 'string') ||
    !r.variants.every((v) => v && typeof v.name === 'string')
  )
    return 'result.json has claims or variants that are not whole';
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
  // each kernel's folder, and in it each other family's (`ipv6/`: `--set family=ipv6`)
  const add = (folder: string, host: boolean): void => {
    for (const family of FAMILIES) {
      const sub = [folder, familyFolder(family)].filter(Boolean).join('/'); // '' for the host's IPv4 (path.join would give '.')
      const labs = labEntries(path.join(outDir, sub), skipped);
      if (labs.length) columns.push({ kernel: labs[0]!.result.kernel, host, folder: sub, labs: toMap(labs), family });
    }
  };
  add('', true);
  if (!fs.existsSync(outDir)) return columns;
  const guests = fs
    .readdirSync(outDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && (/^\d+\.\d+/.test(e.name) || /^(netbsd|freebsd)-/.test(e.name)))
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const folder of guests) add(folder, false);
  // the family is named in a column's label only where both families have columns
  if (columns.every((c) => c.family === 'ipv4')) for (const c of columns) delete c.family;
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

/**
 * index.html for several kernels: the claims side by side, the items labs compare (lab 01's cells) that changed, and each kernel's labs.
 */
export function renderMatrixIndex(columns: readonly KernelColumn[], infos: readonly KernelInfo[] = []): string {
  const rows = compareClaims(columns);
  const items = compareLabItems(columns, allLabs());
  const differing = rows.filter((r) => r.differs).length;
  const untested = rows.filter((r) => !r.differs && r.partlyUntested).length;
  const are = columnsAre(columns);
  const head = columns
    .map((c) => `<th>${c.folder ? `<a href="${esc(c.folder)}/index.html">${esc(columnLabel(c))}</a>` : esc(columnLabel(c))}</th>`)
    .join('');
  const kernelRows = columns
    .map((c, i) => {
      const info = infos[i] ?? {};
      const how = c.host
        ? 'the host'
        : info.accel === 'stack'
          ? `${esc(info.package ?? '?')} · ${esc(info.version ?? '')} · the host's labs, its TCP/IP stack in a helper ` +
            `process${info.wallMs ? ` · ${(info.wallMs / 1000).toFixed(0)} s in all` : ''}`
          : `${esc(info.package ?? '?')} ${esc(info.version ?? '')} · qemu ${info.accel === 'kvm' ? 'KVM' : 'TCG'}` +
            `${info.bootMs ? ` · booted in ${(info.bootMs / 1000).toFixed(1)} s` : ''}` +
            `${info.wallMs ? ` · ${(info.wallMs / 1000).toFixed(0)} s in all` : ''} · ` +
            `<a href="${esc(c.folder)}/console.log">console.log</a>`;
      const started = [...c.labs.values()].map((l) => l.result.startedAt).sort()[0] ?? '';
      return `<tr><th>${esc(columnLabel(c))}</th><td>${how}</td><td>${c.labs.size} labs</td><td class="meta">${esc(started)}</td></tr>`;
    })
    .join('\n');
  const claimRows = rows
    .map((r) => {
      const cells = r.cells
        .map((x) =>
          x
            ? `<td class="${x.differs ? 'differs' : ''}" title="${esc(x.evidence)}">` +
              `<a href="${esc(x.href)}">${verdictBadge(x.verdict)}</a></td>`
            : '<td class="meta">—</td>',
        )
        .join('');
      const mark = r.differs ? 'row-differs' : r.partlyUntested ? 'row-untested' : '';
      return `<tr class="${mark}"><th>${esc(r.claim)}</th><td>${esc(r.lab)} ${esc(r.slug)}</td><td>${esc(r.text)}</td>${cells}</tr>`;
    })
    .join('\n');
  const LIMIT = 300;
  const itemSections = items
    .map(({ lab, hook, compared, changes }) => {
      const itemRows = changes
        .slice(0, LIMIT)
        .map((ch) => {
          const outcomes = ch.outcomes.map((o) => `<td><code>${o === null ? '—' : esc(o)}</code></td>`).join('');
          return `<tr><td><code>${esc(ch.cell)}</code></td>${outcomes}</tr>`;
        })
        .join('\n');
      const more = changes.length > LIMIT ? ` The first ${LIMIT} are shown; result.json has them all.` : '';
      return `<h2>Lab ${esc(lab)}: ${esc(hook.items)} that changed between kernels</h2>
<p>${changes.length} of ${compared} ${esc(hook.items)} measured on more than one kernel have another outcome
(${esc(hook.outcome)}).${more}</p>
${changes.length ? `<table><tr><th>${esc(hook.items)}</th>${head}</tr>\n${itemRows}\n</table>` : ''}`;
    })
    .join('\n');
  const differs = differing
    ? `${differing} of ${rows.length} claims have verdicts that differ between ${are}: ` +
      'their rows are marked red, and the verdicts that differ are outlined.'
    : `No claim has different verdicts on the ${are} that judged it (${rows.length} claims).`;
  const notEverywhere = untested
    ? ` ${untested} could not be judged on every kernel ` +
      '(grey mark: "not tested" there, its evidence names the precondition that failed); ' +
      '"not tested" is no verdict and differs from nothing.'
    : '';
  const labLinks = (c: KernelColumn): string =>
    [...c.labs.values()].map((l) => `<a href="${esc(labHref(c, l.dirName))}">${esc(l.result.lab)}</a>`).join(' ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — results in ${columns.length} ${are}</title><style>${CSS}</style></head>
<body><h1>twlab — the same labs in ${columns.length} columns: ${are}</h1>
<table><tr><th>kernel</th><th>how it ran</th><th>labs</th><th>first lab started</th></tr>
${kernelRows}
</table>
<h2>Claims side by side</h2>
<p>${differs}${notEverywhere} Each verdict links to that kernel's report; hover for its evidence.</p>
<table><tr><th>claim</th><th>lab</th><th>text</th>${head}</tr>
${claimRows}
</table>
${itemSections}
<h2>Labs</h2>
<ul>${columns.map((c) => `<li>${esc(columnLabel(c))}: ${labLinks(c)}</li>`).join('')}</ul>
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

/**
 * Writes report.html in one lab's folder from its result.json and timeline.json (the runner does it before the folder replaces the old
 * one).
 */
export function writeLabReport(dir: string, result: LabResult): string {
  const events = readTimelineEvents(dir); // none: a report without states
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
      writeAtomically(path.join(dir, 'index.html'), renderIndex([...c.labs.values()], { course: false }));
      written.push(path.join(dir, 'index.html'));
    }
  }
  // the course page beside the index, linking the reports just written
  try {
    written.push(writeCourseHtml(outDir));
  } catch {
    // the index still links to it; `twlab course --html` writes it
  }
  const index = path.join(outDir, 'index.html');
  const single = columns.length === 1 && columns[0]!.host && columns[0]!.folder === '';
  writeAtomically(
    index,
    columns.length === 0 || single
      ? renderIndex([...(columns[0]?.labs.values() ?? [])])
      : renderMatrixIndex(
          columns,
          columns.map((c) => kernelInfo(outDir, c)),
        ),
  );
  written.push(index);
  return written;
}
