// Other OSes' TCP/IP stacks as columns beside the Linux kernels (--kernel netbsd, freebsd): what
// the runner needs of each — the helper that boots it, how its results are labelled, where its
// evidence goes. The host's labs run against it, one helper per lab (src/lab/run/lab-main.ts).
import { ensureHelper, ensureStack, type FreebsdStack } from './freebsd';
import { netbsdFolder, type NetbsdStack } from './netbsd';

export type StackOs = 'NetBSD' | 'FreeBSD';

export interface StackTarget {
  os: StackOs;
  /** the helper binary (native/stack-helper/, linked against the stack) */
  helper: string;
  /** its environment (F-Stack's tap is named when it boots) */
  env: Record<string, string>;
  /** what results are labelled with: "NetBSD 7.99.34 (src-netbsd 82f3a69)" */
  label: string;
  /** the release the stack says it is: "7.99.34", "13.0" */
  release: string;
  /** its evidence folder under --out: netbsd-7.99.34, freebsd-13.0 */
  folder: string;
  /** kernel.json's package and version, and how it runs, for the run's header */
  package: string;
  version: string;
  how: string;
}

export function netbsdTarget(s: NetbsdStack): StackTarget {
  return {
    os: 'NetBSD',
    helper: s.helper,
    env: {},
    label: s.label,
    release: s.release,
    folder: netbsdFolder(s.release),
    package: 'NetBSD rump kernel',
    version: `src-netbsd ${s.srcRev.slice(0, 7)}, buildrump.sh ${s.buildrumpRev}`,
    how: 'a rump kernel in a helper process',
  };
}

/** The evidence folder of FreeBSD's column: <out>/freebsd-13.0/NN-slug. */
export function freebsdFolder(release: string): string {
  return `freebsd-${release}`;
}

/** The Linux tap the F-Stack helper attaches to, in the lab's namespace (stack-network.ts names it so). */
export const FREEBSD_TAP = 'tun0';

export function freebsdTarget(s: FreebsdStack, helper: string): StackTarget {
  return {
    os: 'FreeBSD',
    helper,
    env: { TWLAB_FSTACK_TAP: FREEBSD_TAP },
    label: s.label,
    release: s.freebsdRelease,
    folder: freebsdFolder(s.freebsdRelease),
    package: `F-Stack ${s.fstackVersion} (FreeBSD ${s.freebsdRelease} netinet, __FreeBSD_version ${s.freebsdVersion})`,
    version: `F-Stack ${s.commit.slice(0, 7)}, DPDK ${s.dpdkVersion}`,
    how: 'FreeBSD’s stack as a library (F-Stack over DPDK) in a helper process',
  };
}

/** FreeBSD's stack for --kernel freebsd: built on first use, then its helper. */
export async function prepareFreebsd(log: (s: string) => void): Promise<StackTarget> {
  const stack = await ensureStack(log);
  return freebsdTarget(stack, await ensureHelper(stack, log));
}
