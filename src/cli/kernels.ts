// `twlab kernels`: the Debian kernels cached and fetchable for --kernel, and the NetBSD and FreeBSD stacks (--build builds one).
import type { Command } from 'commander';
import { ALL_KERNELS } from '../kernels/debian';
import { kernelListing } from '../kernels/doctor';
import { ensureNetbsd } from '../kernels/netbsd';
import { prepareFreebsd } from '../kernels/stacks';
import * as path from 'node:path';
import { TwlabError } from '../lab/api/errors';
import { OPTIONS } from './options';
import { err, out } from './output';

export function register(program: Command): void {
  program
    .command('kernels')
    .description('list the Debian kernels cached for --kernel, those apt can fetch, and the NetBSD and FreeBSD stacks')
    .addOption(OPTIONS.json('print the listing as JSON'))
    .option('--build <stack>', 'build (once) what --kernel <stack> runs, now: netbsd (its rump kernel) or freebsd (F-Stack and its DPDK)')
    .action(async (opts: { json?: boolean; build?: string }) => {
      if (opts.build === 'freebsd') {
        const s = await prepareFreebsd((line) => err(`twlab: ${line}`));
        out(`${s.label}: ${path.dirname(path.dirname(s.helper))} (helper ${s.helper})`);
        return;
      }
      if (opts.build === 'netbsd') {
        const s = await ensureNetbsd((line) => err(`twlab: ${line}`));
        out(`${s.label}: ${s.dir} (helper ${s.helper})`);
        return;
      }
      if (opts.build !== undefined) throw new TwlabError('BAD_USAGE', `--build takes netbsd or freebsd, not ${JSON.stringify(opts.build)}`);
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
  for (const k of l.cached)
    out(
      `  ${k.release.padEnd(24)} ${k.package} ${k.version ?? ''} · ${(k.bytes / 1e6).toFixed(0)} MB · ` +
        `fetched ${k.fetchedAt} in ${(k.fetchMs / 1000).toFixed(1)} s`,
    );
  out('\nDebian kernels apt can fetch (generic amd64 flavour), newest first:');
  if (!Object.keys(l.available).length) out('  (none: apt knows no linux-image-*-amd64-unsigned package; run `apt-get update`)');
  const cached = new Set(l.cached.map((k) => k.release));
  for (const [series, ks] of Object.entries(l.available)) {
    const shown = ks.slice(0, 6).map((k, i) => `${k.release}${i === 0 ? ' (newest)' : ''}${cached.has(k.release) ? ' [cached]' : ''}`);
    out(`  ${series.padEnd(5)} ${shown.join(', ')}${ks.length > 6 ? `, … ${ks.length - 6} older` : ''}`);
  }
  out(`\nNetBSD's TCP/IP stack (--kernel netbsd), a rump kernel built from ${l.netbsd.pinned}:`);
  const nb = l.netbsd;
  const nbSource = nb.sourceEnv ? ` from TWLAB_NETBSD_SRC=${nb.sourceEnv}` : ' (sources from github.com, or TWLAB_NETBSD_SRC)';
  out(
    nb.built
      ? `  ${nb.built.label} · ${(nb.built.bytes / 1e6).toFixed(0)} MB in ${nb.built.dir} · ` +
          `built ${nb.built.builtAt} in ${(nb.built.buildMs / 60000).toFixed(1)} min from ${nb.built.source}`
      : `  not built yet: the first \`--kernel netbsd\` run builds it into ${nb.cacheDir}${nbSource}`,
  );
  const fb = l.freebsd;
  out(`\nFreeBSD's TCP/IP stack (--kernel freebsd), F-Stack (FreeBSD 13.0's network code over DPDK) built from ${fb.pinned}:`);
  const fbSource = fb.sourceEnv ? ` from TWLAB_FREEBSD_SRC=${fb.sourceEnv}` : ' (source from github.com, or TWLAB_FREEBSD_SRC)';
  const fbFirst = fb.missing.length ? `; first: apt-get install ${fb.missing.join(' ')}` : '';
  out(
    fb.built
      ? `  ${fb.built.label} · ${(fb.built.bytes / 1e6).toFixed(0)} MB in ${fb.built.dir} · ` +
          `built ${fb.built.builtAt} in ${(fb.built.buildMs.total / 60000).toFixed(1)} min from ${fb.built.source}`
      : `  not built yet: the first \`--kernel freebsd\` run builds it into ${fb.cacheDir}${fbSource}${fbFirst}`,
  );
  out(
    `\n\`twlab run <ids> --kernel ${ALL_KERNELS.join(',')}\` (or \`--kernel all\`) takes the newest of each series; ` +
      'name an exact one as 6.1.0-56 or 6.12.115.',
  );
}
