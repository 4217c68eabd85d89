// The address family a lab runs over: the `family` parameter every lab that makes connections
// takes (`ipv4`, `ipv6`, or both: `ipv4,ipv6` runs the lab once per family, each in its own
// namespace, and shows the results side by side). Linux's IPv6 TCP has its own entry points
// (tcp_v6_connect, inet6_bind, tcp_v6_timewait_ack) over the same TCP; a lab's claims are judged
// per family, and a knob that has no meaning for a family is no precondition met there.
import { FAMILY_ADDRESSES, type FamilyAddresses } from '../../wire/address-plan';
import type { IpFamily } from '../../wire/address';
import type { ParamSpec, ParamValue } from './params';

export const FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

/** The `family` parameter, added by defineLab to a lab that declares `families`. */
export function familyParam(families: readonly IpFamily[] = FAMILIES): ParamSpec {
  return {
    name: 'family',
    kind: 'list',
    default: ['ipv4'],
    choices: families,
    help:
      'the address family the kernel sockets, the peer and the capture use (192.0.2.0/24 or 2001:db8::/64); ' +
      'ipv4,ipv6 runs the lab once per family and shows the two side by side',
  };
}

/** The families a run of a lab asks for (its `family` parameter), in order; [] when the lab takes none. */
export function familiesOf(params: Readonly<Record<string, ParamValue>>): IpFamily[] {
  const v = params.family;
  if (!Array.isArray(v)) return [];
  return FAMILIES.filter((f) => v.includes(f));
}

/** The one family a lab process runs over (the runner gives each process one); ipv4 for a lab without the parameter. */
export function familyOfRun(params: Readonly<Record<string, ParamValue>>): IpFamily {
  return familiesOf(params)[0] ?? 'ipv4';
}

/** "IPv4" / "IPv6", as people write it. */
export function familyLabel(f: IpFamily): string {
  return f === 'ipv4' ? 'IPv4' : 'IPv6';
}

/**
 * Where a family's evidence goes under --out: IPv4's lab folders directly in it (as before the
 * parameter existed), IPv6's in `ipv6/` (as a guest kernel's go in its `<uname -r>/`).
 */
export function familyFolder(f: IpFamily): string {
  return f === 'ipv4' ? '' : f;
}

/** The lab network's addresses for `f` (host, peer, the second pair, the wildcard). */
export function addressesOf(f: IpFamily): FamilyAddresses {
  return FAMILY_ADDRESSES[f];
}

/** "kernel 2001:db8::1, peer 2001:db8::2": who is who in a family's captures. */
export function familyPair(f: IpFamily): string {
  const a = addressesOf(f);
  return `kernel ${a.host}, peer ${a.peer}`;
}
