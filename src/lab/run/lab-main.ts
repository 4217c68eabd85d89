// The lab process: started by the runner as
//   setpriv --pdeathsig KILL -- unshare --net -- node dist/src/lab/run/lab-main.js '<job json>'
// so it lives alone in a fresh network namespace that dies with it. It builds the lab network,
// runs one lab, writes its evidence into the staging directory and reports on stdout, one JSON
// message per line (see LabMessage).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTimeline } from '../../capture/timeline';
import { currentBackend, useBackend } from '../../host/backend/current';
import { fstackBackend, FREEBSD_KNOBS } from '../../host/backend/freebsd';
import { NETBSD_KNOBS } from '../../host/backend/knobs';
import { setupStackNetwork } from '../../host/backend/stack-network';
import { KnobMissingError, type Backend } from '../../host/backend/types';
import { CaptureError, PacketCapture } from '../../host/capture';
import { diagAvailable } from '../../host/diag';
import { setupLabNetwork, type LabNetwork } from '../../host/netns';
import { TunLink, type LabLink } from '../../host/tunlink';
import * as readline from 'node:readline';
import { LabContext, NO_GATE, type CpuGate, type LabMessage } from '../api/context';
import type { ParamValue } from '../api/params';
import { formatJson } from '../api/json';
import { resolveLabIds } from './registry';
import { labClaims, type LabResult } from '../api/types';
import { score, scoreClass, type QuestionResult } from '../api/questions';
import { requires } from '../api/verdict';

export interface LabJob {
  labId: string;
  params: Record<string, ParamValue>;
  /** where this run's evidence is written; the runner renames it into place on success */
  stagingDir: string;
  /** the student's predictions for this lab's questions (twlab run --predict) */
  predictions?: Record<string, string | number | null>;
  /** a class's predictions for this lab's questions, per student (twlab run --predict class.csv) */
  classAnswers?: Array<[string, Record<string, string | number | null>]>;
  /** another OS's TCP/IP stack as the system under test (default: the Linux kernel) */
  stack?: StackJob;
}

/** Which stack, and the helper that boots it (src/kernels/netbsd.ts, freebsd.ts build them). */
export interface StackJob {
  os: 'NetBSD' | 'FreeBSD';
  helper: string;
  /** the helper's environment */
  env?: Record<string, string>;
  /** the result's label, `{release}` replaced by the booted kernel's release */
  label: string;
}

function send(m: LabMessage): void {
  process.stdout.write(JSON.stringify(m) + '\n');
}

/** CPU slots from the runner: an acquire goes out on stdout, the grant comes back on stdin. */
function runnerGate(lab: string): CpuGate {
  const waiting = new Map<number, () => void>();
  let next = 1;
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    try {
      const { grant } = JSON.parse(line) as { grant?: number };
      if (grant !== undefined) {
        waiting.get(grant)?.();
        waiting.delete(grant);
      }
    } catch {
      // not ours
    }
  });
  process.stdin.unref();
  return {
    acquire: () =>
      new Promise<void>((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        send({ type: 'cpu', lab, op: 'acquire', id });
      }),
    release: () => send({ type: 'cpu', lab, op: 'release', id: 0 }),
  };
}

export async function runJob(job: LabJob): Promise<LabResult> {
  const [def] = resolveLabIds([job.labId]);
  const sysctls: Record<string, string | number> = {};
  for (const spec of def!.params) {
    const v = job.params[spec.name];
    if (spec.sysctl && v !== undefined) sysctls[spec.sysctl] = typeof v === 'boolean' ? (v ? 1 : 0) : String(v);
  }
  const { net, link, system, missingKnobs } = await labNetwork(job, sysctls, [...(def!.recordSysctls ?? [])]);
  fs.mkdirSync(job.stagingDir, { recursive: true });
  // Linux's frames with the kernel's own timestamps; where no packet socket can be had, and for
  // another OS's stack (its frames cross a tap on a helper's time, not its own), as the link sees them
  let capture: PacketCapture | null = null;
  let noCapture = '';
  if (system.identity.os === 'Linux') {
    try {
      capture = new PacketCapture(net.tunName);
    } catch (e) {
      if (!(e instanceof CaptureError)) throw e;
      noCapture = e.message;
    }
  }
  const ctx = new LabContext({
    def: def!,
    params: job.params,
    dir: job.stagingDir,
    net,
    link,
    capture,
    send,
    system,
    missingKnobs,
    cpu: process.env.TWLAB_CPU_GATE === '1' ? runnerGate(def!.id) : NO_GATE,
  });
  if (noCapture) ctx.note(`${noCapture}: frames are stamped as twlab reads and writes them`);
  if (system.identity.os === 'Linux' && !diagAvailable())
    ctx.note(
      'this kernel answers no sock_diag for TCP (tcp_diag not loaded): ' +
        'the socket table is read whole from /proc/net/tcp where one four-tuple would do',
    );
  const startedAt = new Date();
  const t0 = performance.now();
  let stoppedBy: KnobMissingError | null = null;
  try {
    await def!.run(ctx);
  } catch (e) {
    // a knob the system under test does not have stopped the lab: what it judged stands, the
    // rest is not tested, naming the knob
    if (!(e instanceof KnobMissingError)) throw e;
    stoppedBy = e;
    for (const c of labClaims(def!).filter((c) => !ctx.claims.some((r) => r.id === c.id))) {
      ctx.judge(c.id, {
        requires: [requires(`the knob ${e.knob}`, false, e.message)],
        agrees: false,
        evidence: 'the lab stopped where it needed that knob',
      });
    }
    ctx.conclude(`Stopped: ${e.message}; claims not judged by then are not tested.`);
    ctx.concludeClaims();
  } finally {
    ctx.dispose();
    const drops = capture?.drops() ?? 0;
    if (drops) ctx.note(`the capture socket dropped ${drops} frames for want of buffer: the pcaps miss them`);
    capture?.close();
    link.close();
    system.close();
  }
  const result: LabResult = {
    lab: def!.id,
    slug: def!.slug,
    title: def!.title,
    kernel: system.identity.os === 'Linux' ? os.release() : system.identity.label,
    ...(system.identity.os === 'Linux' ? {} : { system: system.identity }),
    ...(def!.params.some((p) => p.name === 'family') ? { family: ctx.family } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    params: job.params,
    sysctls: { ...net.sysctls, ...ctx.sysctlsSet },
    variants: ctx.variants,
    claims: ctx.claims,
    conclusion: ctx.conclusion,
    output: ctx.printed,
  };
  const asked = def!.questions ?? [];
  const unanswered = asked.filter((q) => !ctx.questions.some((a) => a.id === q.id)).map((q) => q.id);
  if (unanswered.length && !stoppedBy) throw new Error(`lab ${def!.id} answered no ${unanswered.join(', ')}`);
  if (asked.length) {
    const ordered = asked.map((q) => ctx.questions.find((a) => a.id === q.id)).filter((q): q is QuestionResult => !!q);
    if (job.predictions) {
      const s = score(ordered, job.predictions);
      result.questions = s.questions;
      result.predictionScore = s.score;
    } else result.questions = ordered;
    if (job.classAnswers) result.class = scoreClass(ordered, job.classAnswers);
  }
  const missing = labClaims(def!)
    .filter((c) => !ctx.claims.some((r) => r.id === c.id))
    .map((c) => c.id);
  if (missing.length) throw new Error(`lab ${def!.id} gave no verdict for ${missing.join(', ')}`);
  writeTimeline(job.stagingDir, { lab: def!.id, clock: ctx.clock, events: ctx.timeline });
  fs.writeFileSync(path.join(job.stagingDir, 'result.json'), formatJson(result, 5) + '\n');
  return result;
}

/** The lab's network and system under test: Linux's TUN, or another OS's stack on a tap. */
async function labNetwork(
  job: LabJob,
  sysctls: Record<string, string | number>,
  record: string[],
): Promise<{ net: LabNetwork; link: LabLink; system: Backend; missingKnobs: KnobMissingError[] }> {
  if (!job.stack) {
    const net = await setupLabNetwork({ sysctls, record });
    return { net, link: new TunLink(net.tunFd), system: currentBackend(), missingKnobs: [] };
  }
  const label = job.stack.label;
  const freebsd = job.stack.os === 'FreeBSD';
  const s = await setupStackNetwork({
    helper: job.stack.helper,
    env: job.stack.env,
    os: job.stack.os,
    label: (release) => label.replace('{release}', release),
    knobs: freebsd ? FREEBSD_KNOBS : NETBSD_KNOBS,
    sysctls,
    record,
  });
  const system = freebsd ? fstackBackend(s.backend) : s.backend;
  useBackend(system);
  return { net: s.net, link: s.link, system, missingKnobs: s.missing };
}

async function main(): Promise<void> {
  let job: LabJob;
  try {
    job = JSON.parse(process.argv[2] ?? '') as LabJob;
  } catch {
    process.stderr.write('lab-main.js is started by `twlab run`, not by hand\n');
    process.exit(2);
  }
  try {
    await runJob(job);
    // the result itself is in result.json: lines on this pipe stay short
    send({ type: 'result', lab: job.labId, dir: job.stagingDir });
    process.exit(0);
  } catch (e) {
    const err = e as Error & { code?: string };
    send({ type: 'error', lab: job.labId, code: err.code ?? 'LAB_FAILED', message: err.code ? err.message : (err.stack ?? err.message) });
    process.exit(1);
  }
}

if (require.main === module) void main();
