// `twlab doctor`: can labs run here? Each check with its fix; the live check builds a lab network.
import type { Command } from 'commander';
import { kernelChecks } from '../kernels/doctor';
import { checks, isolation, liveCheck } from '../lab/run/preflight';
import { out } from './output';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check that this machine can run labs, with a fix for each failing check')
    .action(() => {
      process.exitCode = doctorCommand();
    });
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
