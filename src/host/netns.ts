// The lab's private network namespace, seen from inside: addresses, the TUN device, sysctls.
// This process must already be in a fresh namespace (the runner starts it under
// `unshare --net`); everything here refuses to touch a namespace that has other interfaces.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { HOST_PREFIXES } from '../wire/address-plan';
import { native } from './native';

const execFileP = promisify(execFile);

export const TUN_NAME = 'tw0';

export class NamespaceError extends Error {
  constructor(
    readonly code: 'NOT_ISOLATED' | 'TUN_UNAVAILABLE' | 'IP_FAILED' | 'SYSCTL_FAILED' | 'BAD_SYSCTL',
    message: string,
  ) {
    super(message);
  }
}

function sysctlPath(name: string): string {
  if (!/^net\.[A-Za-z0-9_.-]+$/.test(name) || name.includes('..')) {
    throw new NamespaceError('BAD_SYSCTL', `only net.* sysctls may be set in a lab namespace, not ${JSON.stringify(name)}`);
  }
  return '/proc/sys/' + name.replace(/\./g, '/');
}

export function readSysctl(name: string): string | null {
  try {
    return fs.readFileSync(sysctlPath(name), 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return null;
  }
}

/** Writes a per-namespace sysctl (this process is in the lab's namespace; the host is untouched). */
export function writeSysctl(name: string, value: string | number): void {
  const p = sysctlPath(name);
  try {
    fs.writeFileSync(p, String(value));
  } catch (e) {
    throw new NamespaceError('SYSCTL_FAILED', `cannot set ${name}=${value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Interfaces of the current network namespace (/proc/self/net/dev is per namespace). */
export function interfaces(): string[] {
  const text = fs.readFileSync('/proc/self/net/dev', 'utf8');
  return text
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean);
}

/**
 * Refuses to run anywhere but a fresh, private network namespace: never change the host's
 * network. Fresh means: only `lo`, and (when readable) a different namespace from pid 1's.
 */
export function assertFreshNamespace(): void {
  const ifs = interfaces();
  if (ifs.length !== 1 || ifs[0] !== 'lo') {
    throw new NamespaceError(
      'NOT_ISOLATED',
      `refusing to configure the network: this namespace already has interfaces ` +
        `(${ifs.join(', ')}); labs run only via the runner, in a fresh namespace`,
    );
  }
  try {
    const mine = fs.statSync('/proc/self/ns/net').ino;
    const init = fs.statSync('/proc/1/ns/net').ino;
    if (mine === init) throw new NamespaceError('NOT_ISOLATED', 'refusing to configure the network: this is the host namespace');
  } catch (e) {
    if (e instanceof NamespaceError) throw e;
    // /proc/1 unreadable (user namespace): the interface check above stands
  }
}

async function ipBatch(lines: string[]): Promise<void> {
  const child = execFileP('ip', ['-batch', '-']);
  child.child.stdin!.end(lines.join('\n') + '\n');
  try {
    await child;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new NamespaceError('IP_FAILED', `ip failed: ${(err.stderr || err.message).trim().split('\n')[0]}`);
  }
}

/** Sysctls that keep the namespace quiet: no link-local address, no DAD, RS or RA on the TUN. */
const QUIET_SYSCTLS: Array<[string, string]> = [
  ['net.ipv6.conf.default.addr_gen_mode', '1'],
  ['net.ipv6.conf.default.accept_dad', '0'],
  ['net.ipv6.conf.default.dad_transmits', '0'],
  ['net.ipv6.conf.default.router_solicitations', '0'],
  ['net.ipv6.conf.default.accept_ra', '0'],
  ['net.ipv6.conf.all.accept_ra', '0'],
];

export interface LabNetwork {
  tunFd: number;
  tunName: string;
  /** effective values of every sysctl the lab set or asked to record, read back after setup */
  sysctls: Record<string, string>;
}

export interface SetupOptions {
  /** per-namespace sysctls from lab parameters, set before any socket exists */
  sysctls?: Record<string, string | number>;
  /** sysctls to record in the result without setting them */
  record?: string[];
}

/** Sets the TUN device's MTU (68…65535) inside the lab namespace. */
export async function setTunMtu(name: string, mtu: number): Promise<void> {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new NamespaceError('IP_FAILED', `MTU ${mtu} is outside 68…65535`);
  await ipBatch([`link set ${name} mtu ${mtu}`]);
}

/**
 * Builds the lab network: lo up; TUN tw0 with 192.0.2.1/24 (peer 192.0.2.2), 198.51.100.1/24
 * (peer 198.51.100.2), 2001:db8::1/64 and 2001:db8:1::1/64 nodad (peers ::2); quiet IPv6 settings.
 */
export async function setupLabNetwork(opts: SetupOptions = {}): Promise<LabNetwork> {
  assertFreshNamespace();
  for (const [k, v] of QUIET_SYSCTLS) writeSysctl(k, v);
  const tun = native().tunOpen(TUN_NAME);
  if (tun.ret < 0 || !tun.name) {
    throw new NamespaceError('TUN_UNAVAILABLE', `cannot open /dev/net/tun: ${tun.errno}; run \`twlab doctor\``);
  }
  await ipBatch([
    'link set lo up',
    `link set ${tun.name} multicast off`,
    ...HOST_PREFIXES.map(([address, prefix]) => `addr add ${address}/${prefix} dev ${tun.name}${address.includes(':') ? ' nodad' : ''}`),
    `link set ${tun.name} up`,
  ]);
  for (const [k, v] of Object.entries(opts.sysctls ?? {})) writeSysctl(k, v);
  const sysctls: Record<string, string> = {};
  for (const k of [...Object.keys(opts.sysctls ?? {}), ...(opts.record ?? [])]) {
    const v = readSysctl(k);
    if (v !== null) sysctls[k] = v;
  }
  return { tunFd: tun.ret, tunName: tun.name, sysctls };
}
