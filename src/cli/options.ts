// Every option of the command line, once: its flags, its default and its help, the help written
// from the same constants the code uses (the evidence folder, the kernels of `all`, the labs at once).
import { Option } from 'commander';
import { ALL_KERNELS } from '../kernels/debian';
import { GUEST_LABS_AT_ONCE } from '../kernels/matrix';
import { TwlabError } from '../lab/api/errors';

/** Where evidence goes and is read from, unless --out says otherwise. */
export const DEFAULT_OUT_DIR = 'captures';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The options, by name; `--out` says per command what the folder is for. */
export const OPTIONS = {
  json: (what: string) => new Option('--json', what),
  out: (what: string) => new Option('--out <dir>', what).default(DEFAULT_OUT_DIR),
  verbose: () => new Option('-v, --verbose', 'also show parameters (with defaults) and claims'),
  set: () =>
    new Option('--set <name=value>', 'set a lab parameter; applies to every lab in the run that declares it (repeatable)')
      .argParser(collect)
      .default([]),
  predict: () =>
    new Option(
      '--predict [answers]',
      'predict first: ask each lab\'s questions on this terminal before the run (or take them from a JSON file: {"03": {"q1": ' +
        '"EADDRINUSE"}}), then score them against what the kernel did',
    ),
  jobs: () =>
    new Option(
      '-j, --jobs <n>',
      `labs to run at the same time, per kernel (default: all of them on the host, ${GUEST_LABS_AT_ONCE} in a guest — they mostly ` +
        `wait on kernel timers; their busy steps share CPUs − 1 slots)`,
    ),
  kernel: () =>
    new Option(
      '--kernel <list>',
      `run on these kernels side by side: host, a Debian series (6.1, 6.12), an exact release (6.1.0-57), netbsd or freebsd (those ` +
        `OSes' TCP/IP stacks, built on first use), comma-separated, or all (= ${ALL_KERNELS.join(',')}); Debian kernels boot under ` +
        `qemu, evidence in --out/<uname -r>/ (--out/netbsd-7.99.34/, --out/freebsd-13.0/)`,
    ),
} as const;

/** `--jobs`: a whole number ≥ 1, or undefined (the default). */
export function parseJobs(jobs: string | undefined): number | undefined {
  if (jobs === undefined) return undefined;
  if (!/^\d+$/.test(jobs) || Number(jobs) < 1)
    throw new TwlabError('BAD_USAGE', `--jobs takes a whole number ≥ 1, not ${JSON.stringify(jobs)}`);
  return Number(jobs);
}

/** The options of `twlab run`, as commander hands them over. */
export interface RunOptions {
  set: string[];
  json?: boolean;
  out: string;
  jobs?: string;
  predict?: string | boolean;
  kernel?: string;
}
