// The guest's main process: started by native/guest-init.c inside the qemu guest, chrooted into
// the host's root (read-only over 9p) with the evidence share mounted read-write at the same
// path as on the host. It runs the labs exactly as `twlab run` does on the host — the same
// LabRunner, one `unshare --net` process per lab — and reports back:
//   - on the console (the host reads qemu's serial port): one line per message, `@twlab:{json}`;
//   - in the evidence folder: the labs' own folders, and .guest-outcomes.json at the end.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LabMessage } from '../lab/api/context';
import { assertReady } from '../lab/run/preflight';
import type { ParamValue } from '../lab/api/params';
import { resolveLabIds } from '../lab/run/registry';
import { LabRunner } from '../lab/run/runner';

/** What the host asks the guest to run (written to <evidence folder>/.guest-job.json). */
export interface GuestJob {
  labs: string[];
  params: Record<string, Record<string, ParamValue>>;
  concurrency?: number;
  /** environment the labs need from the host (TWLAB_LABS_DIR) */
  env: Record<string, string>;
}

/** What the guest hands back (.guest-outcomes.json): per lab, its folder name or its error. */
export interface GuestOutcome {
  lab: string;
  dir: string | null;
  error: { code: string; message: string } | null;
}

export type GuestMessage =
  | LabMessage
  | { type: 'ready'; kernel: string; uptimeS: number }
  | { type: 'fatal'; code: string; message: string };

export const JOB_FILE = '.guest-job.json';
export const OUTCOMES_FILE = '.guest-outcomes.json';
export const CONSOLE_MARK = '@twlab:';

function send(m: GuestMessage): void {
  process.stdout.write(CONSOLE_MARK + JSON.stringify(m) + '\n');
}

async function main(): Promise<void> {
  const outDir = process.env.twlab_out ?? '';
  const job = JSON.parse(fs.readFileSync(path.join(outDir, JOB_FILE), 'utf8')) as GuestJob;
  Object.assign(process.env, job.env);
  send({ type: 'ready', kernel: os.release(), uptimeS: Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) });
  let outcomes: GuestOutcome[];
  try {
    const isolation = assertReady();
    const labs = resolveLabIds(job.labs);
    // progress lines are many; the serial console carries one per lab every 2 s
    const lastProgress = new Map<string, number>();
    const runner = new LabRunner();
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => runner.interrupt(s));
    const done = await runner.run({
      labs,
      params: new Map(Object.entries(job.params)),
      outDir,
      isolation,
      concurrency: job.concurrency,
      onMessage: (m) => {
        if (m.type === 'progress') {
          if (Date.now() - (lastProgress.get(m.lab) ?? 0) < 2000) return;
          lastProgress.set(m.lab, Date.now());
        }
        send(m);
      },
    });
    outcomes = done.map((o) => ({ lab: o.def.id, dir: o.dir ? path.relative(outDir, o.dir) : null, error: o.error }));
  } catch (e) {
    const err = e as Error & { code?: string };
    send({ type: 'fatal', code: err.code ?? 'GUEST_FAILED', message: err.code ? err.message : (err.stack ?? err.message) });
    outcomes = job.labs.map((lab) => ({ lab, dir: null, error: { code: err.code ?? 'GUEST_FAILED', message: err.message } }));
  }
  fs.writeFileSync(path.join(outDir, OUTCOMES_FILE), JSON.stringify(outcomes) + '\n');
  process.exit(0);
}

if (require.main === module) void main();
