// Teaching mode: questions answered by each run's own measurements, predictions from a file and
// from a terminal (driven through a pseudo-terminal with `script`), scored in result.json; the
// course; and a report that steps through a ladder in headless Chromium.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabResult } from '../src/lab/api/types';
import { CLI, hasTool, privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const run = privileged();
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} missing: .ci/run installs Debian's chromium`);

/** One line on stderr, nothing on stdout, no stack trace. */
function oneLine(r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('predictions: bad input is one line', () => {
  it('--predict without a terminal and without a file', () => {
    const r = runCli(['run', '05', '--predict', '--out', tmpDir('p0')]);
    if (!run) return; // the privilege check comes first without root
    oneLine(r, /--predict asks its questions on a terminal, and this is none: give the answers in a file instead/);
  });
  it('a file that names an unknown question or an answer that is no choice', () => {
    if (!run) return;
    const dir = tmpDir('p1');
    const f = path.join(dir, 'a.json');
    fs.writeFileSync(f, JSON.stringify({ '05': { q9: 'RST' } }));
    oneLine(runCli(['run', '05', '--predict', f, '--out', dir]), /lab 05 has no question "q9" \(it has q1, q2\)/);
    fs.writeFileSync(f, JSON.stringify({ '05': { q1: 'a FIN, politely' } }));
    oneLine(runCli(['run', '05', '--predict', f, '--out', dir]), /"a FIN, politely" is none of 1\) FIN, 2\) RST, 3\) nothing/);
    fs.writeFileSync(f, '{not json');
    oneLine(runCli(['run', '05', '--predict', f, '--out', dir]), /not JSON/);
    oneLine(
      runCli(['run', '03', '--predict', '05', '--out', dir]),
      /that is a lab id, not a file of answers; put --predict after the lab ids/,
    );
  });
});

describe("a class's answers: bad input is one line", () => {
  it("an empty file, a CSV without lab.question headers, a student's answer that is no choice", () => {
    if (!run) return;
    const dir = tmpDir('c0');
    const f = (name: string, text: string): string => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    oneLine(runCli(['run', '05', '--predict', f('empty.json', '{}'), '--out', dir]), /holds no answers \(\{\}\)/);
    oneLine(runCli(['run', '05', '--predict', f('none.json', '{"05": {}}'), '--out', dir]), /names no answer/);
    oneLine(
      runCli(['run', '05', '--predict', f('bad.csv', 'student,first,second\nana,RST,no\n'), '--out', dir]),
      /column 2 "first": name it by lab and question, like 05\.q1/,
    );
    oneLine(
      runCli([
        'run',
        '05',
        '--predict',
        f('c.json', JSON.stringify({ students: { ana: { '05': { q1: 'RST' } }, ben: { '05': { q1: 'a FIN' } } } })),
        '--out',
        dir,
      ]),
      /student "ben": lab 05 q1: "a FIN" is none of/,
    );
    oneLine(
      runCli(['run', '05', '--predict', f('twice.csv', 'student,05.q1\nana,RST\nana,FIN\n'), '--out', dir]),
      /row 3: student "ana" appears twice/,
    );
  });
});

describe('the course', () => {
  it('prints an order through every lab, each with what it teaches and what to look at', () => {
    const r = runCli(['course']);
    expect(r.code).toBe(0);
    const ids = [...r.stdout.matchAll(/^\s*\d+\. (\d{2}) /gm)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(17);
    expect(r.stdout).toMatch(/teaches: .*\n\s+look at: .*\n\s+run: {5}twlab run \d{2} --predict/);
  });
});

describe.skipIf(!run)('predict, then observe (lab 05)', () => {
  let out: string;
  let result: LabResult;
  beforeAll(() => {
    out = tmpDir('teach');
    const answers = path.join(out, 'answers.json');
    fs.writeFileSync(answers, JSON.stringify({ '05': { q1: 'RST', q2: 1 } }));
    const r = runCli(['run', '05', '--set', 'trials=2', '--predict', answers, '--out', out], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Your predictions, lab 05:\n {2}q1\. .*\n {5}you: RST {3}the kernel: RST {3}✓/);
    expect(r.stdout).toMatch(/you: yes {3}the kernel: no {3}✗/);
    expect(r.stdout).toMatch(/score: 1\/2 right/);
    result = JSON.parse(fs.readFileSync(path.join(out, '05-linger-zero', 'result.json'), 'utf8')) as LabResult;
  }, 120_000);

  it('result.json records the questions, the answers from the measurements, the predictions and the score', () => {
    expect(result.predictionScore).toEqual({ correct: 1, scored: 2, asked: 2 });
    const [q1, q2] = result.questions!;
    expect(q1).toMatchObject({ id: 'q1', answer: 'RST', prediction: 'RST', correct: true });
    expect(q2).toMatchObject({ id: 'q2', answer: 'no', prediction: 'yes', correct: false });
    // the answer points at the frames that show it: the kernel's RSTs in the capture
    const frames = q1!.frames[0]!;
    expect(frames.pcap).toBe('established-idle.pcap');
    const rsts = spawnSync(
      'tshark',
      [
        '-r',
        path.join(out, '05-linger-zero', frames.pcap),
        '-Y',
        'ip.src == 192.0.2.1 && tcp.flags.reset == 1',
        '-T',
        'fields',
        '-e',
        'frame.number',
      ],
      { encoding: 'utf8' },
    );
    if (hasTool('tshark')) expect(rsts.stdout.trim().split('\n').map(Number)).toEqual(frames.numbers);
  });

  it('a parameter that changes what the kernel does changes the answer key: linger_s=5 leaves it not scored', () => {
    const r = runCli(
      [
        'run',
        '05',
        '--set',
        'trials=1',
        '--set',
        'linger_s=5',
        '--set',
        'peer_window=1048576',
        '--set',
        'unsent=1000',
        '--json',
        '--out',
        tmpDir('flip'),
      ],
      { timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as LabResult[];
    expect(res!.questions![0]).toMatchObject({
      answer: null,
      notScored: expect.stringMatching(/^the socket had SO_LINGER \{1,0\} — \{1,5\}/),
    });
    expect(res!.predictionScore).toBeUndefined();
  });

  it.skipIf(!hasTool('script') && !process.env.CI)(
    'on a terminal: arrow keys and Enter choose, Enter alone skips; the score is shown and recorded',
    () => {
      const dir = tmpDir('tty');
      // the keys a student presses: ↓ ↓ Enter (the second choice, RST), then Enter (skip q2)
      const keys = "sleep 3; printf '\\033[B\\033[B\\r'; sleep 1; printf '\\r'";
      const cmd = `(${keys}) | script -qfec "${process.execPath} ${CLI} run 05 --predict --set trials=1 --out ${dir}" /dev/null`;
      const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 90_000 });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Predict first: what will the kernel do\?/);
      expect(r.stdout).toMatch(/› 2\) RST/);
      expect(r.stdout).toMatch(/→ RST/);
      expect(r.stdout).toMatch(/→ \(skipped\)/);
      expect(r.stdout).toMatch(/score: 1\/1 right \(1 not scored or skipped\)/);
      const res = JSON.parse(fs.readFileSync(path.join(dir, '05-linger-zero', 'result.json'), 'utf8')) as LabResult;
      expect(res.questions!.map((q) => q.prediction)).toEqual(['RST', null]);
    },
    100_000,
  );

  it('course --html links the report of each lab that has run, in the course order', () => {
    const r = runCli(['course', '--html', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const html = fs.readFileSync(path.join(out, 'course.html'), 'utf8');
    expect(html).toContain('<a href="05-linger-zero/report.html">');
    expect(html).toMatch(/not run here yet: <code>twlab run 02<\/code>/);
    expect(html.indexOf('Lab 02')).toBeLessThan(html.indexOf('Lab 05'));
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  it.skipIf(!haveChromium)(
    "report.html opens on whole ladders, steps through one by button and keyboard, and links the answers' frames to their rows",
    async () => {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const file = `file://${path.join(out, '05-linger-zero', 'report.html')}`;
      try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
        const requests: string[] = [];
        const errors: string[] = [];
        page.on('request', (q) => (q.url().startsWith('file:') ? undefined : requests.push(q.url())));
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(file);
        const box = page.locator('.stepper').first();
        const rows = box.locator('g.row');
        const total = await rows.count();
        expect(total).toBeGreaterThan(3);
        const visible = async (): Promise<number> =>
          rows.evaluateAll(
            (gs) => gs.filter((g) => (g as unknown as { style: { visibility: string } }).style.visibility !== 'hidden').length,
          );
        // it opens on the whole ladder; stepping is asked for
        expect(await visible()).toBe(total);
        expect(await box.locator('.status').textContent()).toMatch(/^the whole ladder \(\d+ steps\)/);
        await box.locator('button[data-go="first"]').click();
        expect(await visible()).toBe(1);
        expect(await box.locator('.status').textContent()).toMatch(/^step 1\/\d+ (· frame #\d+ )?· t=0\.000 s · kernel: /);
        await box.locator('button[data-go="next"]').click();
        await box.locator('button[data-go="next"]').click();
        expect(await visible()).toBe(3);
        expect(await box.locator('.status').textContent()).toMatch(/^step 3\//);
        await page.screenshot({ path: path.join(out, '05-linger-zero', 'step-3.png'), fullPage: false });
        // the keyboard steps the ladder that has the focus
        await box.focus();
        await page.keyboard.press('ArrowRight');
        expect(await visible()).toBe(4);
        await page.keyboard.press('ArrowLeft');
        await page.keyboard.press('ArrowLeft');
        expect(await visible()).toBe(2);
        await page.keyboard.press('End');
        expect(await visible()).toBe(total);
        expect(await box.locator('.status').textContent()).toMatch(/^the whole ladder .* kernel: \S/);
        await page.screenshot({ path: path.join(out, '05-linger-zero', 'step-all.png'), fullPage: false });
        await page.keyboard.press('Home');
        expect(await visible()).toBe(1);
        // an answer's frame number leads to its row in the ladder, shown and marked
        const link = page.locator('a[href^="#established-idle-f"]').first();
        const target = (await link.getAttribute('href'))!.slice(1);
        await page.locator('details summary').first().click();
        await link.click();
        expect(
          await page
            .locator(`[id="${target}"]`)
            .evaluate(
              (g) => g.classList.contains('hl') && (g as unknown as { style: { visibility: string } }).style.visibility !== 'hidden',
            ),
        ).toBe(true);
        expect(requests).toEqual([]);
        expect(errors).toEqual([]);
        expect(fs.statSync(path.join(out, '05-linger-zero', 'step-3.png')).size).toBeGreaterThan(10_000);
        // without scripts the controls stay hidden and the whole ladder shows
        const ctx = await browser.newContext({ javaScriptEnabled: false });
        const plain = await ctx.newPage();
        await plain.goto(file);
        expect(await plain.locator('.stepper .controls').first().isHidden()).toBe(true);
        const all = plain.locator('.stepper').first().locator('g.row');
        expect(
          await all.evaluateAll(
            (gs) => gs.filter((g) => (g as unknown as { style: { visibility: string } }).style.visibility === 'hidden').length,
          ),
        ).toBe(0);
        await ctx.close();
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});

describe.skipIf(!run)('a class predicts, then looks (lab 05, three students)', () => {
  let out: string;
  let stdout: string;
  beforeAll(() => {
    out = tmpDir('class');
    const csv = path.join(out, 'class.csv');
    // as a spreadsheet exports it: a header of lab.question, one row per student, an empty cell skipped
    fs.writeFileSync(csv, 'student,05.q1,05.q2\nAna,RST,no\nBen,FIN,yes\n"Cy, the third",2,\n');
    const r = runCli(['run', '05', '--set', 'trials=1', '--predict', csv, '--out', out], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    stdout = r.stdout;
  }, 120_000);

  it("prints the class table: per question each answer with its count and who chose it, beside the kernel's", () => {
    expect(stdout).toMatch(/Class predictions, lab 05 \(3 students\):/);
    expect(stdout).toMatch(/q1\. .*\n\s+the kernel: RST\n\s+FIN\s+1 .*Ben\n\s+RST\s+2 .*✓ Ana, Cy, the third\n\s+nothing\s+0/);
    expect(stdout).toMatch(/right: 2\/3/);
    expect(stdout).toMatch(/q2\. [\s\S]*skipped\s+1 .*Cy, the third[\s\S]*right: 1\/2/);
    expect(stdout).toMatch(/scores: Ana 2\/2, Ben 0\/2, Cy, the third 1\/1/);
  });

  it('result.json and the report carry the class table', () => {
    const res = JSON.parse(fs.readFileSync(path.join(out, '05-linger-zero', 'result.json'), 'utf8')) as LabResult;
    expect(res.class!.students).toEqual([
      { name: 'Ana', correct: 2, scored: 2, answered: 2 },
      { name: 'Ben', correct: 0, scored: 2, answered: 2 },
      { name: 'Cy, the third', correct: 1, scored: 1, answered: 1 },
    ]);
    expect(res.class!.questions[0]).toMatchObject({ id: 'q1', answer: 'RST', right: 2, scored: 3, skipped: [] });
    const html = fs.readFileSync(path.join(out, '05-linger-zero', 'report.html'), 'utf8');
    expect(html).toMatch(/The class's predictions \(3 students\)/);
    expect(html).toMatch(/<td>RST ✓<\/td><td class="n">2<\/td>/);
  });

  it("a second run keeps the first's evidence and says where it went", () => {
    const first = JSON.parse(fs.readFileSync(path.join(out, '05-linger-zero', 'result.json'), 'utf8')) as LabResult;
    const r = runCli(['run', '05', '--set', 'trials=1', '--out', out], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const m = /the previous run's evidence \((.+?)\) was kept: (\S+)\//.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(m![1]).toBe(first.startedAt);
    const kept = JSON.parse(fs.readFileSync(path.join(m![2]!, 'result.json'), 'utf8')) as LabResult;
    expect(kept.startedAt).toBe(first.startedAt);
    expect(kept.class?.students).toHaveLength(3);
    expect(path.relative(out, m![2]!)).toMatch(/^earlier\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\/05-linger-zero$/);
    // the index and `twlab show 05` read the new run, not the kept one
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).not.toContain('earlier/');
  }, 100_000);
});
