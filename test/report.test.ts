// The HTML reports, opened in headless Chromium (Debian's, installed by .ci/run): a single offline
// file that makes no network request and logs no error; a screenshot is kept for people to look at.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privileged, removeTmpDirs, runCli, tmpDir } from './helpers';

afterAll(removeTmpDirs);

const CHROMIUM = '/usr/bin/chromium';
const run = privileged();
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} missing: .ci/run installs Debian's chromium`);

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
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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

  it('twlab report rebuilds them from the evidence alone', () => {
    fs.rmSync(path.join(out, 'index.html'));
    fs.rmSync(path.join(out, '05-linger-zero', 'report.html'));
    const r = runCli(['report', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'index.html'))).toBe(true);
    expect(fs.existsSync(path.join(out, '05-linger-zero', 'report.html'))).toBe(true);
  });

});
