// The runner: one process per lab, each alone in a fresh network namespace, in parallel.
//
//   setpriv --pdeathsig KILL -- unshare --net -- node dist/src/lab/run/lab-main.js '<job>'
//
// started in its own process group. The namespace, the TUN device and every socket die with
// that process; the death signal kills it if this process dies (even by SIGKILL); signals we
// receive are forwarded to the group, which is killed outright after a short grace period.
// Evidence is written to a staging directory and swapped into place only when the lab succeeds
// (evidence.ts: a kill at any instant leaves the old evidence or the new).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { pidAlive } from '../../host/pid';
import { removeHelperCopies } from '../../host/uidhelper';
import type { LabMessage } from '../api/context';
import { TwlabError } from '../api/errors';
import type { Kept } from './earlier';
import { recoverStaging, replaceFolder, stagingName, type Recovered } from './evidence';
import { prepareOutDir } from './outdir';
import type { LabJob, StackJob } from './lab-main';
import type { ParamValue } from '../api/params';
import type { Isolation } from './preflight';
import type { Predictions } from '../api/questions';
import { labDirName, type LabDefinition, type LabResult } from '../api/types';
import { FAMILIES, familiesOf, familyFolder } from '../api/family';
import type { IpFamily } from '../../wire/address';

export const GRACE_MS = 2000;

/** One lab process: a lab, in one family where it has the `family` parameter. */
interface LabRun {
  def: LabDefinition;
  family?: IpFamily;
}

export interface LabOutcome {
  def: LabDefinition;
  /** the address family this run used, for a lab with the `family` parameter */
  family?: IpFamily;
  result: LabResult | null;
  /** the lab's directory, when its evidence was put in place */
  dir: string | null;
  /** its evidence replaced an earlier run's (when dir is set) */
  replaced?: boolean;
  /** where the previous run's evidence of this lab was kept (earlier/<start time>/NN-slug), when it was */
  earlier?: Kept | null;
  /** why the previous run's evidence could not be kept (it was removed), when it could not */
  notKept?: string;
  /** what went wrong in `beforeReplace` (the evidence was put in place without it) */
  extraError?: string;
  error: { code: string; message: string } | null;
}

export interface RunOptions {
  labs: LabDefinition[];
  params: Map<string, Record<string, ParamValue>>;
  outDir: string;
  isolation: Isolation;
  /** labs running at once; default: all of them (labs mostly wait on kernel timers) */
  concurrency?: number;
  /** busy steps (LabContext.cpuHeavy) running at once across the labs; default: CPUs − 1, at least 1 */
  cpuSlots?: number;
  /** a lab process's message, with the family that process runs over (for a lab with the `family` parameter) */
  onMessage?: (m: LabMessage, family?: IpFamily) => void;
  /** extra environment for the lab processes */
  env?: Record<string, string>;
  /** the student's predictions, per lab id (twlab run --predict): each such lab scores them */
  predictions?: Predictions;
  /** a class's predictions (twlab run --predict class.csv): student → lab id → question → answer */
  classAnswers?: Map<string, Predictions>;
  /**
   * Called with a finished lab's staging folder before it replaces the old evidence (the CLI writes
   * the lab's report there, so the report is part of the swap); an error is recorded, not fatal.
   */
  beforeReplace?: (staging: string, result: LabResult) => void;
  /** another OS's TCP/IP stack as the system under test (--kernel netbsd) */
  stack?: StackJob;
}

export function labMainEntry(): string {
  return path.join(__dirname, 'lab-main.js');
}

/**
 * Clears the staging folders of runs that were killed outright: old evidence a kill left renamed
 * aside is put back, old evidence a kill left beside a replaced folder is kept under earlier/.
 */
export function removeStaleStaging(outDir: string): Recovered {
  return recoverStaging(outDir, (pid) => !pidAlive(pid));
}

/** A counting semaphore: the run's CPU slots. */
class Slots {
  #free: number;
  #queue: Array<() => void> = [];
  constructor(n: number) {
    this.#free = n;
  }
  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#queue.push(resolve));
  }
  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}

export function defaultCpuSlots(): number {
  return Math.max(1, os.cpus().length - 1);
}

export class LabRunner {
  #children = new Set<ChildProcess>();
  /** lab folders a killed run had left renamed aside, put back by this run */
  restored: string[] = [];
  /** old evidence a killed run had left beside its replaced folder, kept under earlier/ by this run */
  keptAfterKill: Recovered['kept'] = [];
  #killTimer: NodeJS.Timeout | null = null;
  #interrupted: NodeJS.Signals | null = null;

  get interrupted(): NodeJS.Signals | null {
    return this.#interrupted;
  }

  /** Forwards a signal to every lab's process group; kills them all after GRACE_MS. */
  interrupt(signal: NodeJS.Signals): void {
    this.#interrupted ??= signal;
    for (const c of this.#children) killGroup(c, signal);
    this.#killTimer ??= setTimeout(() => this.killAll(), GRACE_MS);
  }

  killAll(): void {
    for (const c of this.#children) killGroup(c, 'SIGKILL');
  }

  async run(opts: RunOptions): Promise<LabOutcome[]> {
    prepareOutDir(opts.outDir);
    ({ restored: this.restored, kept: this.keptAfterKill } = removeStaleStaging(opts.outDir));
    for (const f of FAMILIES.map(familyFolder).filter(Boolean)) {
      if (!fs.existsSync(path.join(opts.outDir, f))) continue;
      const r = removeStaleStaging(path.join(opts.outDir, f));
      this.restored.push(...r.restored);
      this.keptAfterKill.push(...r.kept);
    }
    removeHelperCopies();
    // a lab with the `family` parameter runs once per family asked for, each in its own process
    const runs = opts.labs.flatMap((def): LabRun[] => {
      const families = familiesOf(opts.params.get(def.id) ?? {});
      return families.length ? families.map((family) => ({ def, family })) : [{ def }];
    });
    const keyOf = (r: LabRun): string => `${r.def.id}|${r.family ?? ''}`;
    const queue = [...runs];
    const outcomes = new Map<string, LabOutcome>();
    const width = Math.max(1, Math.min(opts.concurrency ?? queue.length, queue.length));
    const slots = new Slots(opts.cpuSlots ?? defaultCpuSlots());
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        if (this.#interrupted) {
          const error = { code: 'INTERRUPTED', message: 'not started: interrupted' };
          outcomes.set(keyOf(r), { def: r.def, ...(r.family ? { family: r.family } : {}), result: null, dir: null, error });
          continue;
        }
        outcomes.set(keyOf(r), await this.#runOne(r.def, r.family, opts, slots));
      }
    };
    try {
      await Promise.all(Array.from({ length: width }, worker));
    } finally {
      if (this.#killTimer) clearTimeout(this.#killTimer);
    }
    return runs.map((r) => outcomes.get(keyOf(r))!);
  }

  #runOne(def: LabDefinition, family: IpFamily | undefined, opts: RunOptions, slots: Slots): Promise<LabOutcome> {
    const final = path.join(opts.outDir, family ? familyFolder(family) : '', labDirName(def));
    fs.mkdirSync(path.dirname(final), { recursive: true });
    const staging = stagingName(final, 'partial');
    fs.rmSync(staging, { recursive: true, force: true });
    const params = opts.params.get(def.id) ?? {};
    const job: LabJob = {
      labId: def.id,
      params: family ? { ...params, family: [family] } : params,
      stagingDir: staging,
      ...(opts.predictions ? { predictions: opts.predictions[def.id] ?? {} } : {}),
      ...(opts.classAnswers
        ? {
            classAnswers: [...opts.classAnswers].map(
              ([name, p]) => [name, p[def.id] ?? {}] as [string, Record<string, string | number | null>],
            ),
          }
        : {}),
      ...(opts.stack ? { stack: opts.stack } : {}),
    };
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', 'unshare', ...opts.isolation.unshareArgs, '--', process.execPath, labMainEntry(), JSON.stringify(job)],
      {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, UV_THREADPOOL_SIZE: '16', TWLAB_CPU_GATE: '1', ...opts.env },
      },
    );
    this.#children.add(child);
    child.stdin!.on('error', () => undefined); // the lab may be gone before a grant reaches it
    let held = 0; // CPU slots this lab holds: given back if it dies holding them
    let done = false;
    let error: { code: string; message: string } | null = null;
    let stderr = '';
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let m: LabMessage;
      try {
        m = JSON.parse(line) as LabMessage;
      } catch {
        m = { type: 'print', lab: def.id, text: line };
      }
      if (m.type === 'cpu') {
        if (m.op === 'release' && held > 0) {
          held--;
          slots.release();
        } else if (m.op === 'acquire') {
          void slots.acquire().then(() => {
            if (child.exitCode !== null || child.signalCode !== null) return slots.release();
            held++;
            child.stdin!.write(JSON.stringify({ grant: m.id }) + '\n');
          });
        }
        return;
      }
      if (m.type === 'result') done = true;
      else if (m.type === 'error') error = diskError(m.code, m.message) ?? { code: m.code, message: m.message };
      opts.onMessage?.(m, family);
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8192);
    });
    return new Promise((resolve) => {
      child.on('error', (e) => {
        error ??= { code: 'MISSING_TOOL', message: `cannot start setpriv: ${e.message}` };
      });
      child.on('close', (code, signal) => {
        this.#children.delete(child);
        for (; held > 0; held--) slots.release();
        killGroup(child, 'SIGKILL'); // anything the lab left in its group
        if (child.pid !== undefined) removeHelperCopies(child.pid);
        if (code === 0 && done && !this.#interrupted) {
          let result: LabResult | null = null;
          try {
            result = JSON.parse(fs.readFileSync(path.join(staging, 'result.json'), 'utf8')) as LabResult;
          } catch (e) {
            error = { code: 'LAB_FAILED', message: `lab finished but its result.json is unreadable: ${(e as Error).message}` };
          }
          if (result) {
            let extraError: string | undefined;
            try {
              opts.beforeReplace?.(staging, result);
            } catch (e) {
              extraError = (e as Error).message;
            }
            try {
              const { replaced, earlier, notKept } = replaceFolder(staging, final);
              resolve({
                def,
                ...(family ? { family } : {}),
                result,
                dir: final,
                replaced,
                earlier,
                error: null,
                ...(notKept ? { notKept } : {}),
                ...(extraError ? { extraError } : {}),
              });
              return;
            } catch (e) {
              error = {
                code: 'LAB_FAILED',
                message:
                  `its evidence could not be put in place ` +
                  `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${path.basename(final)} is as it was`,
              };
            }
          }
        }
        fs.rmSync(staging, { recursive: true, force: true });
        if (this.#interrupted) error = { code: 'INTERRUPTED', message: `interrupted by ${this.#interrupted}` };
        // its last words, if it said any
        const said = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
        error ??= { code: 'LAB_FAILED', message: `lab process ended (${signal ?? `exit ${code}`})${said}` };
        resolve({ def, ...(family ? { family } : {}), result: null, dir: null, error });
      });
    });
  }
}

/** A lab that failed because the disk (or its quota, or its inodes) was full, said so plainly. */
function diskError(code: string, message: string): { code: string; message: string } | null {
  if (code !== 'ENOSPC' && code !== 'EDQUOT' && !/\b(ENOSPC|EDQUOT)\b/.test(message)) return null;
  const file = /'([^']+)'/.exec(message)?.[1];
  return {
    code: 'ENOSPC',
    message: `no space left on device while writing its evidence${file ? ` (${path.basename(file)})` : ''}: nothing of this run was kept`,
  };
}

/** Sends `signal` to a child's whole process group (it was started detached), if it is still there. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Installs SIGINT/SIGTERM/SIGHUP forwarding for the duration of `fn`. */
export async function withSignalForwarding<T>(runner: { interrupt(signal: NodeJS.Signals): void }, fn: () => Promise<T>): Promise<T> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handler = (s: NodeJS.Signals): void => runner.interrupt(s);
  for (const s of signals) process.on(s, handler);
  try {
    return await fn();
  } finally {
    for (const s of signals) process.off(s, handler);
  }
}

/**
 * The one line an interrupted run ends with: what it replaced (labs that finished before the
 * signal; whether the index could be updated) and what it left as it was.
 */
export function interruptedError(
  signal: NodeJS.Signals,
  what: { replaced?: string[]; untouched?: string[]; index?: string | null } = {},
): TwlabError {
  const replaced = what.replaced ?? [];
  const parts = [`interrupted by ${signal}; lab processes stopped`];
  if (replaced.length)
    parts.push(
      `${replaced.join(', ')} had finished: their evidence and report.html replaced the earlier ` +
        `(${what.index ? `index.html not updated: ${what.index}` : 'index.html updated'})`,
    );
  if (what.untouched?.length || !replaced.length)
    parts.push(`earlier evidence${replaced.length ? ` of ${what.untouched!.join(', ')}` : ''} left as it was`);
  return new TwlabError('INTERRUPTED', parts.join('; '));
}
