// The HTML reports, opened in headless Chromium (Debian's, installed by .ci/run): a single offline
// file that makes no network request and logs no error, and prints to PDF with every ladder whole;
// screenshots (of the page, and of the printed pages) are kept for people to look at.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const CHROMIUM = '/usr/bin/chromium';
const run = privileged();
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} missing: .ci/run installs Debian's chromium`);
// pdftotext and pdftoppm (poppler-utils) read the printed PDF back
const havePoppler = spawnSync('pdftotext', ['-v']).status === 0;
if (!havePoppler && process.env.CI) throw new Error('pdftotext missing: .ci/run installs poppler-utils');

describe.skipIf(!run || !haveChromium)('HTML reports in a browser', () => {
  let out: string;
  beforeAll(() => {
    out = tmpDir('report');
    const r = runCli(['run', '05', '09', '--out', out], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Reports: .*index\.html/);
  }, 150_000);

  it('each lab has report.html and the run has index.html, all self-contained', () => {
    for (const f of ['index.html', '05-linger-zero/report.html', '09-simultaneous-close/report.html']) {
      const html = fs.readFileSync(path.join(out, f), 'utf8');
      // one offline file: at most an inline script (the ladder stepper), nothing fetched
      expect(html).not.toMatch(/<script[^>]*\bsrc=|<link |@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)|fetch\(|XMLHttpRequest|import\(/);
    }
  });

  it('opens in headless Chromium without a network request or an error, and shows the RST', async () => {
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
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      for (const f of ['index.html', '05-linger-zero/report.html']) {
        await page.goto(`file://${path.join(out, f)}`);
        await page.waitForLoadState('load');
      }
      expect(requests).toEqual([]);
      expect(errors).toEqual([]);
      expect(await page.locator('svg.ladder').count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('g.segment.rst').count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('.verdict').count()).toBe(2);
      const shot = path.join(out, '05-linger-zero', 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(20_000);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it.skipIf(!havePoppler)(
    'printed to PDF, every ladder shows whole: every row, inside the page, no buttons, no line cut off',
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
      try {
        for (const lab of ['05-linger-zero', '09-simultaneous-close']) {
          // A4 at 96 dpi, as printed
          const page = await browser.newPage({ viewport: { width: 794, height: 1123 } });
          await page.goto(`file://${path.join(out, lab, 'report.html')}`);
          // a teacher stepped a ladder back to its first row before printing: the print still shows all
          await page.locator('.stepper button[data-go="first"]').first().click();
          await page.emulateMedia({ media: 'print' });
          // in the page (the test is compiled without the DOM's types: the script is text)
          const layout = (await page.evaluate(`(() => {
          const printed = [...document.querySelectorAll('svg.ladder')].filter((svg) => !svg.closest('details.more'));
          return {
            ladders: printed.map((svg) => ({
              right: svg.getBoundingClientRect().right,
              rows: svg.querySelectorAll('g.row').length,
              visible: [...svg.querySelectorAll('g.row')].filter((g) => getComputedStyle(g).visibility === 'visible').length,
              labels: [...svg.querySelectorAll('g.row.segment > text:first-of-type')].map((t) => t.textContent || ''),
            })),
            width: document.body.getBoundingClientRect().right,
            controls: [...document.querySelectorAll('.controls')].filter((c) => getComputedStyle(c).display !== 'none').length,
            output: ((document.querySelector('pre.output') || {}).textContent || '').split('\\n').filter((l) => l.trim()),
          };
        })()`)) as {
            ladders: Array<{ right: number; rows: number; visible: number; labels: string[] }>;
            width: number;
            controls: number;
            output: string[];
          };
          expect(layout.ladders.length, lab).toBeGreaterThan(0);
          expect(layout.controls).toBe(0);
          for (const l of layout.ladders) {
            expect(l.visible).toBe(l.rows);
            expect(l.right).toBeLessThanOrEqual(layout.width + 1);
          }
          await page.screenshot({ path: path.join(out, lab, 'report-print.png'), fullPage: true });
          const pdf = path.join(out, lab, 'report.pdf');
          await page.pdf({ path: pdf, format: 'A4', margin: { top: '1cm', bottom: '1cm', left: '1cm', right: '1cm' } });
          const text = spawnSync('pdftotext', ['-layout', pdf, '-'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
          // every drawn row's frame number and time is in the PDF: no ladder stopped at its SYN, none cut off
          for (const l of layout.ladders) for (const label of l.labels) expect(text, `${lab}: ${label}`).toContain(label);
          expect(text).not.toMatch(/step through|next ▶/);
          // what the lab printed, each line to its end (a long line wraps, it is not cut)
          for (const line of layout.output) {
            const tail = line.trim().split(/\s+/).slice(-2).join(' ');
            expect(text, `${lab}: ${line}`).toContain(tail);
          }
          // the pages as images, for people to look at
          const shot = spawnSync('pdftoppm', ['-png', '-r', '50', '-f', '1', '-l', '3', pdf, path.join(out, lab, 'report-page')], {
            encoding: 'utf8',
          });
          expect(shot.status, shot.stderr).toBe(0);
          // (pdftoppm pads the page number to the page count's width: report-page-1.png or -01.png)
          const first = fs.readdirSync(path.join(out, lab)).filter((f) => /^report-page-0*1\.png$/.test(f));
          expect(first).toHaveLength(1);
          expect(fs.statSync(path.join(out, lab, first[0]!)).size).toBeGreaterThan(10_000);
          await page.close();
        }
      } finally {
        await browser.close();
      }
    },
    90_000,
  );

  it('twlab report rebuilds them from the evidence alone', () => {
    fs.rmSync(path.join(out, 'index.html'));
    fs.rmSync(path.join(out, '05-linger-zero', 'report.html'));
    const r = runCli(['report', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'index.html'))).toBe(true);
    expect(fs.existsSync(path.join(out, '05-linger-zero', 'report.html'))).toBe(true);
  });
});
