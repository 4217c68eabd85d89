// TapLink: the wire to another OS's stack that sits behind a Linux tap device (NetBSD's virtif,
// F-Stack's net_tap). The tap carries Ethernet frames, so this link is the peer's network card:
// an AF_PACKET socket bound to the tap (inside the lab's namespace) sends and receives whole
// frames; it answers ARP and IPv6 neighbour solicitations for the peer's addresses with the
// peer's own MAC, learns the stack's MAC, and unwraps/wraps the IP frames in between. The peer
// and the captures see bare IP frames exactly as on the TUN (LINKTYPE_RAW), so every reader —
// flows, ladders, reports — works unchanged. Address resolution is the link's business, not
// evidence: ARP and neighbour discovery are not captured (they are counted: `resolution`).
import { internetChecksum, pseudoHeaderSum } from '../wire/checksum';
import { formatIPv4, formatIPv6, parseAddress } from '../wire/address';
import { wallUs } from './clock';
import { native } from './native';
import { PolledLink } from './tunlink';

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;
const ICMPV6 = 58;
const ND_NS = 135;
const ND_NA = 136;
/** ICMPv6 types of neighbour discovery and multicast listener discovery (RFC 4861, 2710, 3810) */
const LINK_ICMPV6 = new Set([130, 131, 132, 133, 134, 135, 136, 137, 143]);

export type Mac = Uint8Array;

export function formatMac(m: Mac): string {
  return [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(text: string): Mac {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`not a MAC address: ${text}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export interface TapLinkOptions {
  /** the peer's MAC (locally administered) */
  peerMac: Mac;
  /** the peer's addresses: ARP and neighbour solicitations for these are answered */
  peerAddresses: string[];
}

export class TapLink extends PolledLink {
  readonly peerMac: Mac;
  #peerV4: Set<string>;
  #peerV6: Set<string>;
  #stackMac: Mac | null = null;
  #queued: Uint8Array[] = [];
  #macWaiters: Array<() => void> = [];
  /** ARP and neighbour discovery frames seen and sent (not captured) */
  readonly resolution = { in: 0, out: 0, ignored: 0 };

  constructor(fd: number, o: TapLinkOptions) {
    super(fd);
    this.peerMac = o.peerMac;
    this.#peerV4 = new Set(o.peerAddresses.filter((a) => !a.includes(':')));
    this.#peerV6 = new Set(o.peerAddresses.filter((a) => a.includes(':')).map((a) => formatIPv6(parseAddress(a).bytes)));
  }

  /** Ethernet frames from the tap: the IP frames inside are recorded and delivered, the link's own business is not. */
  protected received(frames: Buffer[], stamps: number[]): void {
    const ip: Uint8Array[] = [];
    const at: number[] = [];
    for (let i = 0; i < frames.length; i++) {
      const f = this.#receive(frames[i]!);
      if (!f) continue;
      this.record(f, stamps[i]!, 'kernel→peer');
      ip.push(f);
      at.push(stamps[i]!);
    }
    this.deliver(ip, at);
  }

  /** The stack's MAC, once a frame of its has been seen (an ARP reply, at the latest). */
  get stackMac(): Mac | null {
    return this.#stackMac;
  }

  /**
   * Learns the stack's MAC by asking for `address` (one of its IPv4 addresses) from `from` (the
   * peer's), as a host does before its first frame. Resolves false after `timeoutMs`.
   */
  async resolve(address: string, from: string, timeoutMs = 3000): Promise<boolean> {
    const t0 = performance.now();
    while (!this.#stackMac && performance.now() - t0 < timeoutMs) {
      this.#sendArp(1, new Uint8Array(6).fill(0xff), parseAddress(from).bytes, new Uint8Array(6), parseAddress(address).bytes);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 300);
        this.#macWaiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return this.#stackMac !== null;
  }

  #learn(mac: Mac): void {
    if (this.#stackMac?.every((b, i) => b === mac[i])) return;
    this.#stackMac = Uint8Array.from(mac);
    for (const w of this.#macWaiters.splice(0)) w();
    for (const f of this.#queued.splice(0)) this.#transmit(f);
  }

  /** An Ethernet frame from the tap → the IP frame inside, or null when it was the link's own business. */
  #receive(frame: Uint8Array): Uint8Array | null {
    if (frame.length < 14) return null;
    const dst = frame.subarray(0, 6);
    const src = frame.subarray(6, 12);
    const type = (frame[12]! << 8) | frame[13]!;
    const forUs = dst.every((b, i) => b === this.peerMac[i]) || (dst[0]! & 1) === 1; // ours, broadcast or multicast
    if (!forUs || src.every((b, i) => b === this.peerMac[i])) {
      this.resolution.ignored++;
      return null;
    }
    if (type === ETH_ARP) {
      this.resolution.in++;
      this.#onArp(frame.subarray(14));
      return null;
    }
    if (type !== ETH_IPV4 && type !== ETH_IPV6) {
      this.resolution.ignored++;
      return null;
    }
    const ip = frame.subarray(14);
    if (type === ETH_IPV6 && ip.length >= 41 && ip[6] === ICMPV6 && LINK_ICMPV6.has(ip[40]!)) {
      this.resolution.in++;
      this.#learn(src);
      if (ip[40] === ND_NS) this.#onNeighbourSolicitation(ip, src);
      return null;
    }
    if ((dst[0]! & 1) === 1) {
      this.resolution.ignored++; // multicast IP the peer has no part in
      return null;
    }
    this.#learn(src);
    // an IPv4 frame may come padded to Ethernet's 60-byte minimum: cut it to its own length
    if (type === ETH_IPV4 && ip.length >= 20) {
      const total = (ip[2]! << 8) | ip[3]!;
      if (total >= 20 && total < ip.length) return Uint8Array.from(ip.subarray(0, total));
    }
    if (type === ETH_IPV6 && ip.length >= 40) {
      const total = 40 + ((ip[4]! << 8) | ip[5]!);
      if (total < ip.length) return Uint8Array.from(ip.subarray(0, total));
    }
    return Uint8Array.from(ip);
  }

  #onArp(arp: Uint8Array): void {
    if (arp.length < 28 || arp[0] !== 0 || arp[1] !== 1 || arp[2] !== 8 || arp[3] !== 0) return;
    const op = (arp[6]! << 8) | arp[7]!;
    const senderMac = arp.subarray(8, 14);
    const senderIp = arp.subarray(14, 18);
    const targetIp = arp.subarray(24, 28);
    this.#learn(senderMac);
    if (op === 1 && this.#peerV4.has(formatIPv4(targetIp))) this.#sendArp(2, senderMac, targetIp, senderMac, senderIp);
  }

  /** ARP (RFC 826): op 1 request, 2 reply, from the peer's MAC */
  #sendArp(op: number, ethDst: Mac, senderIp: Uint8Array, targetMac: Mac, targetIp: Uint8Array): void {
    const f = new Uint8Array(42);
    f.set(ethDst, 0);
    f.set(this.peerMac, 6);
    f[12] = ETH_ARP >> 8;
    f[13] = ETH_ARP & 0xff;
    f.set([0, 1, 8, 0, 6, 4, 0, op], 14);
    f.set(this.peerMac, 22);
    f.set(senderIp, 28);
    f.set(targetMac, 32);
    f.set(targetIp, 38);
    this.resolution.out++;
    this.#write(f);
  }

  /** A neighbour solicitation for one of the peer's IPv6 addresses → a solicited advertisement (RFC 4861 §7.2.4). */
  #onNeighbourSolicitation(ip: Uint8Array, srcMac: Mac): void {
    if (ip.length < 64) return;
    const target = ip.subarray(48, 64);
    if (!this.#peerV6.has(formatIPv6(target))) return;
    const src = ip.subarray(8, 24);
    const unspecified = src.every((b) => b === 0);
    const dst = unspecified ? parseAddress('ff02::1').bytes : src;
    const icmp = new Uint8Array(32);
    icmp[0] = ND_NA;
    icmp[4] = unspecified ? 0x20 : 0x60; // Solicited (unless DAD), Override
    icmp.set(target, 8);
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1;
    icmp.set(this.peerMac, 26);
    const sum = internetChecksum(icmp, pseudoHeaderSum(target, dst, ICMPV6, icmp.length));
    icmp[2] = sum >> 8;
    icmp[3] = sum & 0xff;
    const pkt = new Uint8Array(40 + icmp.length);
    pkt[0] = 0x60;
    pkt[4] = icmp.length >> 8;
    pkt[5] = icmp.length & 0xff;
    pkt[6] = ICMPV6;
    pkt[7] = 255;
    pkt.set(target, 8);
    pkt.set(dst, 24);
    pkt.set(icmp, 40);
    const eth = new Uint8Array(14 + pkt.length);
    eth.set(unspecified ? Uint8Array.from([0x33, 0x33, 0, 0, 0, 1]) : srcMac, 0);
    eth.set(this.peerMac, 6);
    eth[12] = ETH_IPV6 >> 8;
    eth[13] = ETH_IPV6 & 0xff;
    eth.set(pkt, 14);
    this.resolution.out++;
    this.#write(eth);
  }

  #write(frame: Uint8Array): void {
    const r = native().packetSend(this.fd, frame);
    if (r.ret < 0) this.failed(r.errno);
  }

  /** Wraps an IP frame for the stack: recorded first, sent at once if the stack's MAC is known. */
  send(frame: Uint8Array): void {
    this.record(frame, this.stamp(wallUs()), 'peer→kernel');
    if (this.#stackMac) this.#transmit(frame);
    else this.#queued.push(frame);
  }

  #transmit(frame: Uint8Array): void {
    const eth = new Uint8Array(14 + frame.length);
    eth.set(this.#stackMac!, 0);
    eth.set(this.peerMac, 6);
    const type = frame[0]! >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
    eth[12] = type >> 8;
    eth[13] = type & 0xff;
    eth.set(frame, 14);
    this.#write(eth);
  }
}
