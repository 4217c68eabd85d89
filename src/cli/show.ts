// `twlab show`: a capture (or a lab's captures) as ladders, a summary or a listing.
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { showCapture, type ShowIO, type ShowOptions } from '../capture/show';
import { TwlabError } from '../lab/api/errors';
import { labDirName } from '../lab/api/types';
import { resolveLabIds } from '../lab/run/registry';
import { OPTIONS } from './options';
import { err, out } from './output';

interface ShowCliOptions extends ShowOptions {
  out: string;
  /** with a lab id: the captures of that guest kernel (twlab run --kernel) */
  kernel?: string;
}

export function register(program: Command): void {
  program
    .command('show')
    .description(
      'read a capture as ladder diagrams (kernel left, peer right; flags, relative seq/ack, marks, states), a per-connection ' +
        'summary, or a per-frame listing; streams captures of any size',
    )
    .argument(
      '<capture|lab>',
      'a pcap or pcapng file (twlab evidence, tcpdump -w, Wireshark, dumpcap: raw IP, Ethernet or Linux cooked link types), ' +
        'or a lab id to show its captures',
    )
    .addOption(OPTIONS.out('where lab captures are (with a lab id)'))
    .option(
      '--summary',
      'one line per connection: incarnations, who closed first, how it ended, who holds TIME_WAIT, strays, retransmissions, duration, ' +
        'the close pattern',
    )
    .option('--explain', "the summary, with each connection's close pattern explained and the lab that shows it")
    .option('--conn <n|a:p-b:p>', 'draw one connection: its number in --summary, or its four-tuple')
    .option('--list', 'a flat per-frame listing instead of ladder diagrams')
    .option('--kernel <release>', 'with a lab id: the captures a guest kernel made (twlab run --kernel), e.g. 6.1 or 6.1.0-57-amd64')
    .action((file: string, opts: ShowCliOptions) => {
      process.exitCode = showCommand(file, opts);
    });
}

/**
 * The evidence folder of a guest kernel under `out`: its exact release, or the one release that
 * starts with `name` (6.1 → 6.1.0-57-amd64).
 */
function kernelFolder(out: string, name: string): string {
  const folders = fs.existsSync(out)
    ? fs
        .readdirSync(out)
        .filter((f) => (/^\d+\.\d+/.test(f) || /^(netbsd|freebsd)-/.test(f)) && fs.statSync(path.join(out, f)).isDirectory())
    : [];
  if (folders.includes(name)) return name;
  const matches = folders.filter((f) => f.startsWith(name + '.') || f.startsWith(name + '-') || f.startsWith(name + '+'));
  if (matches.length === 1) return matches[0]!;
  throw new TwlabError(
    'BAD_USAGE',
    matches.length
      ? `--kernel ${name} matches ${matches.join(', ')}; name one`
      : `no evidence for kernel ${name} in ${out}${folders.length ? ` (there is: ${folders.join(', ')})` : ''}; run \`twlab run ` +
          `<ids> --kernel ${name}\` first`,
  );
}

function showCommand(target: string, opts: ShowCliOptions): number {
  const io: ShowIO = { out, warn: (line) => err(`twlab: warning: ${line}`) };
  const show = (file: string): void =>
    showCapture(
      file,
      {
        ...opts,
        colour: process.stdout.isTTY && !process.env.NO_COLOR,
        columns: process.stdout.isTTY ? process.stdout.columns : undefined,
      },
      io,
    );
  // a capture file (`-`: standard input), or a lab id whose captures are shown variant by variant
  if (target !== '-' && !fs.existsSync(target) && /^[a-z0-9-]+$/i.test(target)) {
    const [def] = resolveLabIds([target]);
    const dir = path.resolve(opts.out, opts.kernel ? kernelFolder(path.resolve(opts.out), opts.kernel) : '', labDirName(def!));
    if (!fs.existsSync(dir))
      throw new TwlabError('BAD_PCAP', `no captures for lab ${def!.id} in ${dir}; run \`twlab run ${def!.id}\` first`);
    const pcaps = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.pcap'))
      .sort();
    if (pcaps.length === 0)
      throw new TwlabError('BAD_PCAP', `no captures (*.pcap) in ${dir}; run \`twlab run ${def!.id}\` again to make them`);
    for (const f of pcaps) {
      out(`== ${def!.id} ${def!.slug} · ${f}`);
      show(path.join(dir, f));
      out();
    }
    return 0;
  }
  show(target);
  return 0;
}
