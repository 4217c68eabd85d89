// The lab network when the system under test is another OS's stack: the helper boots it in the
// lab's (fresh, private) namespace, its virtual Ethernet interface appears there as a Linux tap
// device, and the peer joins the tap through a packet socket (TapLink). Linux's own stack takes
// no part: the tap has no address and IPv6 is off on it, so Linux neither answers nor sends.
// The stack gets the addresses the host has on the TUN in a Linux lab (192.0.2.1/24,
// 198.51.100.1/24, 2001:db8::1/64), the peer the same as there.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { native } from '../native';
import { ADDR, HOST_PREFIXES, PEER_ADDRESSES } from '../../wire/address-plan';
import { assertFreshNamespace, NamespaceError, writeSysctl, type LabNetwork } from '../netns';
import { parseMac, TapLink } from '../taplink';
import { helperBackend } from './helper-backend';
import type { KnobTable } from './knobs';
import { StackHelper } from './stack-helper';
import { KnobMissingError, type Backend, type SystemIdentity } from './types';

const execFileP = promisify(execFile);

/** the peer's MAC: locally administered, unicast */
export const PEER_MAC = '02:00:00:00:00:02';

async function ip(args: string[]): Promise<void> {
  try {
    await execFileP('ip', args);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new NamespaceError('IP_FAILED', `ip ${args.join(' ')} failed: ${(err.stderr || err.message).trim().split('\n')[0]}`);
  }
}

export interface StackNetworkOptions {
  /** the helper binary */
  helper: string;
  /** its environment (F-Stack's helper is told its tap's name: DPDK makes the tap when it boots) */
  env?: Record<string, string>;
  /** os and label of the stack; the release comes from the booted kernel */
  os: SystemIdentity['os'];
  label: (release: string) => string;
  knobs: KnobTable;
  /** lab parameters' sysctls, by Linux's names, set before any socket exists */
  sysctls?: Record<string, string | number>;
  /** sysctls to record (Linux's names) */
  record?: string[];
}

export interface StackNetwork {
  backend: Backend;
  link: TapLink;
  net: LabNetwork;
  /** the parameters' sysctls the stack has no equivalent of */
  missing: KnobMissingError[];
}

export async function setupStackNetwork(o: StackNetworkOptions): Promise<StackNetwork> {
  assertFreshNamespace();
  writeSysctl('net.ipv6.conf.default.disable_ipv6', '1'); // the tap, made next, gets no IPv6 from Linux
  const helper = StackHelper.start(o.helper, o.env);
  try {
    const release = helper.ready.release ?? 'unknown';
    const identity: SystemIdentity = { os: o.os, release, label: o.label(release) };
    const wire = helper.call('wire_create', { tap: 'tun0' });
    if (wire.kind !== 'ok' || wire.ret < 0)
      throw new NamespaceError(
        'TUN_UNAVAILABLE',
        `${identity.label} could not create its interface on a tap device: ${wire.kind === 'ok' ? wire.errno : `${wire.what} missing`}`,
      );
    const ifname = wire.kv.if!;
    await ip(['link', 'set', 'tun0', 'up']);
    // whole Ethernet frames, not those Linux itself sends on tun0 (the peer's own)
    const fd = native().packetOpen('tun0', true, true);
    if (fd.ret < 0) throw new NamespaceError('TUN_UNAVAILABLE', `cannot open a packet socket on tun0: ${fd.step} → ${fd.errno}`);
    const link = new TapLink(fd.ret, { peerMac: parseMac(PEER_MAC), peerAddresses: [...PEER_ADDRESSES] });
    for (const [addr, prefix] of HOST_PREFIXES) {
      const r = helper.call('if_addr', { if: ifname, addr, prefix });
      if (r.kind !== 'ok' || r.ret < 0)
        throw new NamespaceError(
          'IP_FAILED',
          `${identity.label}: cannot add ${addr}/${prefix} to ${ifname}: ${r.kind === 'ok' ? r.errno : 'missing'}`,
        );
    }
    if (!(await link.resolve(ADDR.host4, ADDR.peer4)))
      throw new NamespaceError('TUN_UNAVAILABLE', `${identity.label} did not answer ARP for ${ADDR.host4} on tun0 within 3 s`);
    const backend = helperBackend(helper, {
      identity,
      knobs: o.knobs,
      async setMtu(mtu) {
        const r = helper.call('if_mtu', { if: ifname, mtu });
        if (r.kind === 'missing')
          throw new KnobMissingError(`MTU ${mtu}`, `${identity.os} ${release}`, `has no way to set it on ${ifname}`);
        if (r.ret < 0) throw new KnobMissingError(`MTU ${mtu}`, `${identity.os} ${release}`, `refuses it on ${ifname} (${r.errno})`);
        await ip(['link', 'set', 'tun0', 'mtu', String(mtu)]);
      },
    });
    const missing: KnobMissingError[] = [];
    const sysctls: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.sysctls ?? {})) {
      try {
        sysctls[k] = backend.writeSysctl(k, v);
      } catch (e) {
        if (!(e instanceof KnobMissingError)) throw e;
        missing.push(e);
        sysctls[k] = `missing: ${e.message}`;
      }
    }
    for (const k of o.record ?? []) {
      if (k in sysctls) continue;
      const v = backend.readSysctl(k);
      if (v !== null) sysctls[k] = v;
    }
    for (const k of o.knobs.record) {
      const v = backend.readSysctl(k);
      if (v !== null) sysctls[k] = v;
    }
    return { backend, link, net: { tunFd: fd.ret, tunName: 'tun0', sysctls }, missing };
  } catch (e) {
    helper.close();
    throw e;
  }
}
