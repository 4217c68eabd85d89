// twlab's command line: parses, calls the library, prints. One module per command (list, run,
// kernels, show, report, course, doctor), each registering itself on the program; the options and
// their defaults in options.ts; every error a user can cause printed here as one line.
import { Command, CommanderError } from 'commander';
import { isCodedError } from '../lab/api/errors';
import * as course from './course';
import * as doctor from './doctor';
import * as kernels from './kernels';
import * as list from './list';
import { err, stdout } from './output';
import * as report from './report';
import * as run from './run';
import * as show from './show';

/** The commands, in the order --help lists them. */
const COMMANDS: ReadonlyArray<{ register(program: Command): void }> = [list, run, kernels, show, report, course, doctor];

export function buildProgram(): Command {
  const program = new Command('twlab')
    .description(
      "A TIME_WAIT and linger laboratory: the Linux kernel's TCP against a scriptable userspace peer, with pcap evidence and verdicts.",
    )
    .version(require('../../../package.json').version as string)
    // commander's own errors (an unknown option, a missing argument) as one line like every other
    .configureOutput({
      outputError: (message, write) => write(`twlab: ${message.replace(/^error: /, '').trim()} (run \`twlab --help\` for usage)\n`),
    })
    .exitOverride();
  for (const c of COMMANDS) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `twlab … | head` closes our stdout early: that is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    stdout.flush();
  } catch (e) {
    stdout.flush();
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help/version)
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (!isCodedError(e)) throw e; // a bug: bin/twlab.js prints its stack
    err(`twlab: ${e.message}`);
    process.exitCode = e.exitCode;
  }
}
