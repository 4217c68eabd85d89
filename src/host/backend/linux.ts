// The Linux kernel as the system under test: every call is one syscall through the addon
// (native/addon.cc), with Linux's own option numbers and structures; the observer reads the
// namespace's /proc files and sysctls.
import * as os from 'node:os';
import { parseAddress, type IpFamily } from '../../wire/address';
import { native, type SyscallResult } from '../native';
import { readSysctl, setTunMtu, TUN_NAME, writeSysctl } from '../netns';
import { diagAvailable, socketAt } from '../diag';
import { counters, socketTable } from '../observe';
import { decodeSockaddr, encodeSockaddr } from '../sockaddr';
import { NOBODY_UID, UidHelper } from '../uidhelper';
import {
  tcpStateName,
  type Backend,
  type Linger,
  type SocketCalls,
  type SocketOption,
  type SocketOptionValues,
  type TcpInfo,
} from './types';

export { tcpStateName } from './types';

function optionSpec(name: SocketOption): { level: number; optname: number } {
  const c = native().constants;
  switch (name) {
    case 'SO_REUSEADDR':
    case 'SO_REUSEPORT':
    case 'SO_LINGER':
    case 'SO_RCVBUF':
    case 'SO_SNDBUF':
    case 'SO_KEEPALIVE':
      return { level: c.SOL_SOCKET, optname: c[name] };
    case 'IPV6_V6ONLY':
      return { level: c.IPPROTO_IPV6, optname: c.IPV6_V6ONLY };
    case 'TCP_NODELAY':
    case 'TCP_MAXSEG':
      return { level: c.IPPROTO_TCP, optname: c[name] };
    case 'IP_ADD_MEMBERSHIP':
    case 'IP_LOCAL_PORT_RANGE':
      return { level: c.IPPROTO_IP, optname: c[name] };
  }
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function encodeOption<K extends SocketOption>(name: K, value: SocketOptionValues[K]): Buffer {
  switch (name) {
    case 'SO_LINGER': {
      const l = value as Linger;
      const b = Buffer.alloc(8); // struct linger { int l_onoff; int l_linger; }
      b.writeInt32LE(l.onoff ? 1 : 0, 0);
      b.writeInt32LE(l.seconds, 4);
      return b;
    }
    case 'IP_ADD_MEMBERSHIP': {
      const m = value as SocketOptionValues['IP_ADD_MEMBERSHIP'];
      const b = Buffer.alloc(8); // struct ip_mreq { in_addr imr_multiaddr; in_addr imr_interface; }
      b.set(parseAddress(m.group).bytes, 0);
      b.set(parseAddress(m.iface).bytes, 4);
      return b;
    }
    case 'IP_LOCAL_PORT_RANGE': {
      const r = value as SocketOptionValues['IP_LOCAL_PORT_RANGE'];
      const b = Buffer.alloc(4); // u32: low 16 bits = lo, high 16 bits = hi (ip(7))
      b.writeUInt32LE((((r.hi & 0xffff) << 16) | (r.lo & 0xffff)) >>> 0);
      return b;
    }
    default:
      return int32(typeof value === 'boolean' ? (value ? 1 : 0) : (value as number));
  }
}

function decodeOption<K extends SocketOption>(name: K, b: Buffer): SocketOptionValues[K] {
  switch (name) {
    case 'SO_LINGER':
      return { onoff: b.readInt32LE(0) !== 0, seconds: b.readInt32LE(4) } as SocketOptionValues[K];
    case 'IP_ADD_MEMBERSHIP':
      throw new TypeError('IP_ADD_MEMBERSHIP cannot be read back');
    case 'IP_LOCAL_PORT_RANGE': {
      const v = b.readUInt32LE(0);
      return { lo: v & 0xffff, hi: v >>> 16 } as SocketOptionValues[K];
    }
    case 'SO_RCVBUF':
    case 'SO_SNDBUF':
    case 'TCP_MAXSEG':
      return b.readInt32LE(0) as SocketOptionValues[K];
    default:
      return (b.readInt32LE(0) !== 0) as SocketOptionValues[K];
  }
}

const view = (data: Uint8Array): Buffer => Buffer.from(data.buffer, data.byteOffset, data.length);

/** Linux's socket calls through the addon. */
export const linuxSockets: SocketCalls = {
  socket(family: IpFamily, proto, nonBlocking) {
    const c = native().constants;
    const domain = family === 'ipv4' ? c.AF_INET : c.AF_INET6;
    const type = (proto === 'tcp' ? c.SOCK_STREAM : c.SOCK_DGRAM) | c.SOCK_CLOEXEC | (nonBlocking ? c.SOCK_NONBLOCK : 0);
    return native().socket(domain, type, 0);
  },
  setOption(fd, name, value) {
    const { level, optname } = optionSpec(name);
    return native().setsockopt(fd, level, optname, encodeOption(name, value));
  },
  getOption(fd, name) {
    const { level, optname } = optionSpec(name);
    const len = name === 'SO_LINGER' || name === 'IP_ADD_MEMBERSHIP' ? 8 : 4;
    const r = native().getsockopt(fd, level, optname, len);
    return { ret: r.ret, errno: r.errno, value: r.ret < 0 ? null : decodeOption(name, r.value) };
  },
  bind: (fd, address, port) => native().bind(fd, encodeSockaddr(address, port)),
  listen: (fd, backlog) => native().listen(fd, backlog),
  connect: (fd, address, port) => native().connect(fd, encodeSockaddr(address, port)),
  async accept(fd, timeoutMs) {
    const { addr, ...r } = await native().accept(fd, timeoutMs);
    return { ...r, peer: r.ret < 0 ? null : decodeSockaddr(addr) };
  },
  send: (fd, data, opts) => native().send(fd, view(data), opts?.oob ? 1 /* MSG_OOB */ : 0),
  sendNow: (fd, data) => native().sendNow(fd, view(data), 0),
  recv: (fd, maxLength, opts) => native().recv(fd, maxLength, opts.peek ? native().constants.MSG_PEEK : 0, opts.timeoutMs),
  shutdown: (fd, how) => native().shutdown(fd, native().constants[how]),
  setNonBlocking: (fd, on) => native().setNonBlocking(fd, on),
  close: (fd) => native().close(fd),
  closeNow: (fd) => native().closeNow(fd),
  localAddress(fd) {
    const r = native().getsockname(fd);
    return r.ret < 0 ? null : decodeSockaddr(r.addr);
  },
  peerAddress(fd) {
    const r = native().getpeername(fd);
    return r.ret < 0 ? null : decodeSockaddr(r.addr);
  },
  tcpInfo(fd): SyscallResult & { info: TcpInfo | null } {
    const c = native().constants;
    const r = native().getsockopt(fd, c.IPPROTO_TCP, c.TCP_INFO, c.sizeofTcpInfo);
    if (r.ret < 0 || r.value.length < 104) return { ret: r.ret, errno: r.errno, info: null };
    const b = r.value; // struct tcp_info (linux/tcp.h)
    return {
      ret: r.ret,
      errno: r.errno,
      info: {
        state: tcpStateName(b.readUInt8(0)),
        retransmits: b.readUInt8(2),
        probes: b.readUInt8(3),
        backoff: b.readUInt8(4),
        options: b.readUInt8(5),
        rtoUs: b.readUInt32LE(8),
        sndMss: b.readUInt32LE(16),
        rcvMss: b.readUInt32LE(20),
        unacked: b.readUInt32LE(24),
        lost: b.readUInt32LE(32),
        retrans: b.readUInt32LE(36),
        lastDataSentMs: b.readUInt32LE(44),
        lastAckRecvMs: b.readUInt32LE(56),
        rttUs: b.readUInt32LE(68),
        sndCwnd: b.readUInt32LE(80),
        totalRetrans: b.readUInt32LE(100),
      },
    };
  },
};

/** The host's (or a guest's) Linux kernel, in the lab's namespace. */
export function linuxBackend(): Backend {
  return {
    identity: { os: 'Linux', release: os.release(), label: os.release() },
    sockets: linuxSockets,
    table: socketTable,
    // sock_diag's exact lookup, where the kernel answers it (tcp_diag loaded): asked on first use,
    // inside the lab's namespace once its loopback is up
    get socketAt() {
      return diagAvailable() ? socketAt : undefined;
    },
    counters,
    readSysctl,
    writeSysctl(name, value) {
      writeSysctl(name, value);
      return readSysctl(name) ?? String(value);
    },
    process: (uid = process.geteuid?.() ?? NOBODY_UID) => UidHelper.start(uid),
    setMtu: (mtu) => setTunMtu(TUN_NAME, mtu),
    close: () => undefined,
  };
}
