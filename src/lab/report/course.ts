// A course through the labs: an order that builds from "who waits in TIME_WAIT" to "why TIME_WAIT
// exists", one sentence of what each lab teaches and what to look at in its capture, each declared
// by the lab itself (`course` in its defineLab). Printed by `twlab course`; `twlab course --html`
// writes one offline page linking the labs' reports.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { escapeXml as esc } from '../../capture/html';
import { allLabs } from '../run/registry';
import type { CourseEntry } from '../api/definition';
import { labDirName, type LabDefinition, type LabResult } from '../api/types';

type Step = CourseEntry & { def: LabDefinition };

/** The labs that declare a course entry (`course` in their definition), in the order they declare. */
function steps(): Step[] {
  return allLabs()
    .flatMap((def) => (def.course ? [{ ...def.course, def }] : []))
    .sort((a, b) => a.order - b.order || a.def.id.localeCompare(b.def.id));
}

/** Labs found that declare no course entry: said after the course, so a new lab's missing entry shows. */
function notInCourse(): LabDefinition[] {
  return allLabs().filter((def) => !def.course);
}

export function formatCourse(): string[] {
  const out = ['A course through the labs — run each with --predict, predict, then look:', ''];
  steps().forEach((s, i) => {
    out.push(`${String(i + 1).padStart(2)}. ${s.def.id} ${s.def.slug} — ${s.def.title}`);
    out.push(`    teaches: ${s.teaches}`);
    out.push(`    look at: ${s.look}`);
    out.push(`    run:     twlab run ${s.def.id} --predict`);
    out.push('');
  });
  const left = notInCourse();
  if (left.length) {
    out.push(`Not in the course (their definitions declare no \`course\`): ${left.map((d) => `${d.id} ${d.slug}`).join(', ')}`);
    out.push('');
  }
  out.push("`twlab course --html` writes this as a page that links each lab's report (run the labs first: twlab run all).");
  return out;
}

/** Writes `<outDir>/course.html`: the course, each step linked to its report when the lab has run there. */
export function writeCourseHtml(outDir: string): string {
  const items = steps().map((s, i) => {
    const dir = labDirName(s.def);
    const resultFile = path.join(outDir, dir, 'result.json');
    let result: LabResult | null = null;
    try {
      result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as LabResult;
    } catch {
      // not run yet
    }
    const report = result
      ? `<a href="${esc(dir)}/report.html">the report</a> (run ${esc(result.startedAt)}, Linux ${esc(result.kernel)})`
      : `not run here yet: <code>twlab run ${esc(s.def.id)}</code>`;
    const questions = (s.def.questions ?? [])
      .map((q) => `<li>${esc(q.text)} <span class="meta">(${esc(q.choices.join(' · '))})</span></li>`)
      .join('');
    return `<li><h2>${i + 1}. Lab ${esc(s.def.id)} — ${esc(s.def.title)}</h2>
<p><strong>Teaches.</strong> ${esc(s.teaches)}</p>
${questions ? `<p><strong>Predict first.</strong></p><ul>${questions}</ul>` : ''}
<p><strong>Look at.</strong> ${esc(s.look)}</p>
<p>${report}</p></li>`;
  });
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — a course through the labs</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222;line-height:1.45}
ol{list-style:none;padding-left:0}li h2{font-size:1.15rem;margin:1.5rem 0 .3rem}.meta{color:#555}code{font-family:ui-monospace,monospace}
</style></head>
<body><h1>twlab — a course through the labs</h1>
<p>Each lab asks its questions before it runs (<code>twlab run NN --predict</code>): predict, then look at what the kernel did.
The reports step through each connection segment by segment.</p>
<ol>
${items.join('\n')}
</ol></body></html>
`;
  const file = path.join(outDir, 'course.html');
  const temporary = `${file}.${process.pid}`;
  try {
    fs.writeFileSync(temporary, html);
    fs.renameSync(temporary, file);
  } catch (e) {
    fs.rmSync(temporary, { force: true }); // a full disk leaves no half-written page behind
    throw e;
  }
  return file;
}
