// `twlab kernels`: the Debian kernels cached and fetchable for --kernel, and NetBSD's stack (--build netbsd builds it).
import type { Command } from 'commander';
import { ALL_KERNELS } from '../kernels/debian';
import { kernelListing } from '../kernels/doctor';
import { ensureNetbsd } from '../kernels/netbsd';
import { TwlabError } from '../lab/api/errors';
import { OPTIONS } from './options';
import { err, out } from './output';

export function register(program: Command): void {
  program
    .command('kernels')
    .description('list the Debian kernels cached for --kernel, those apt can fetch, and NetBSD\'s stack')
    .addOption(OPTIONS.json('print the listing as JSON'))
    .option('--build <stack>', 'build (once) what --kernel <stack> runs, now: netbsd (its rump kernel, from TWLAB_NETBSD_SRC or github.com)')
    .action(async (opts: { json?: boolean; build?: string }) => {
      if (opts.build !== undefined) {
        if (opts.build !== 'netbsd') throw new TwlabError('BAD_USAGE', `--build takes netbsd, not ${JSON.stringify(opts.build)}`);
        const s = await ensureNetbsd((line) => err(`twlab: ${line}`));
        out(`${s.label}: ${s.dir} (helper ${s.helper})`);
        return;
      }
      kernelsCommand(opts);
    });
}

function kernelsCommand(opts: { json?: boolean }): void {
  const l = kernelListing();
  if (opts.json) {
    out(JSON.stringify(l, null, 2));
    return;
  }
  out(`Cached in ${l.cacheDir}:`);
  if (!l.cached.length) out('  (none yet: `twlab run … --kernel 6.1` fetches what it needs)');
  for (const k of l.cached) out(`  ${k.release.padEnd(24)} ${k.package} ${k.version ?? ''} · ${(k.bytes / 1e6).toFixed(0)} MB · fetched ${k.fetchedAt} in ${(k.fetchMs / 1000).toFixed(1)} s`);
  out('\nDebian kernels apt can fetch (generic amd64 flavour), newest first:');
  if (!Object.keys(l.available).length) out("  (none: apt knows no linux-image-*-amd64-unsigned package; run `apt-get update`)");
  const cached = new Set(l.cached.map((k) => k.release));
  for (const [series, ks] of Object.entries(l.available)) {
    const shown = ks.slice(0, 6).map((k, i) => `${k.release}${i === 0 ? ' (newest)' : ''}${cached.has(k.release) ? ' [cached]' : ''}`);
    out(`  ${series.padEnd(5)} ${shown.join(', ')}${ks.length > 6 ? `, … ${ks.length - 6} older` : ''}`);
  }
  out(`\nNetBSD's TCP/IP stack (--kernel netbsd), a rump kernel built from ${l.netbsd.pinned}:`);
  out(l.netbsd.built ? `  ${l.netbsd.built.label} · ${(l.netbsd.built.bytes / 1e6).toFixed(0)} MB in ${l.netbsd.built.dir} · built ${l.netbsd.built.builtAt} in ${(l.netbsd.built.buildMs / 60000).toFixed(1)} min from ${l.netbsd.built.source}` : `  not built yet: the first \`--kernel netbsd\` run builds it into ${l.netbsd.cacheDir}${l.netbsd.sourceEnv ? ` from TWLAB_NETBSD_SRC=${l.netbsd.sourceEnv}` : ' (sources from github.com, or TWLAB_NETBSD_SRC)'}`);
  out(`\n\`twlab run <ids> --kernel ${ALL_KERNELS.join(',')}\` (or \`--kernel all\`) takes the newest of each series; name an exact one as 6.1.0-56 or 6.12.115.`);
}
