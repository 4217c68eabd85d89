// The capture: every frame that crosses the lab's TUN device, read from an AF_PACKET socket bound
// to it — the path tcpdump takes — so each frame carries the time the kernel stamped it where it
// crossed (on transmit as the kernel hands it to the device, on receive as the device hands it
// to the kernel), not the time twlab got round to reading it. A frame the kernel sends and the
// peer's answer are therefore as far apart as they were on the wire, whatever the machine's load.
import { fromRealtimeUs } from './clock';
import { native, type PacketPollerHandle } from './native';
import type { Direction } from './tunlink';

export interface CapturedFrame {
  /** the kernel's stamp, µs since the epoch, on the lab's clock (src/host/clock.ts) */
  timeUs: number;
  direction: Direction;
  /** the frame, or its first `snaplen` bytes */
  data: Uint8Array;
  /** its length on the wire */
  length: number;
}

export class CaptureError extends Error {
  constructor(
    readonly errno: string,
    readonly step: string,
  ) {
    super(`cannot capture on the lab's device: ${step} → ${errno}`);
  }
}

/** How much the socket may hold while the loop is busy: a burst of 64 KiB frames (lab 11's bulk transfer) fits. */
const RCVBUF_BYTES = 64 << 20;

export class PacketCapture {
  readonly fd: number;
  readonly ifname: string;
  #poller: PacketPollerHandle | null;
  #listeners = new Set<(f: CapturedFrame) => void>();
  #lastUs = 0;
  #drops = 0;
  #lastError: string | null = null;

  /** Opens a packet socket on `ifname` (SOCK_DGRAM: on a TUN, the IP packet itself). Throws CaptureError. */
  constructor(ifname: string, snaplen = 262144) {
    const n = native();
    const r = n.packetOpen(ifname);
    if (r.ret < 0) throw new CaptureError(r.errno ?? 'unknown', r.step ?? 'packetOpen');
    this.fd = r.ret;
    this.ifname = ifname;
    const size = Buffer.alloc(4);
    size.writeInt32LE(RCVBUF_BYTES);
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN (we have it in the lab's namespace); SO_RCVBUF is capped by rmem_max
    if (n.setsockopt(this.fd, n.constants.SOL_SOCKET, n.constants.SO_RCVBUFFORCE, size).ret < 0)
      n.setsockopt(this.fd, n.constants.SOL_SOCKET, n.constants.SO_RCVBUF, size);
    this.#poller = new n.PacketPoller(this.fd, snaplen, (frames, times, lengths, outgoing, errno) => {
      if (errno) this.#lastError = errno;
      // the kernel stamps on CLOCK_REALTIME; the lab's clock is the monotonic one anchored at its
      // start (src/host/clock.ts): the same, unless a guest's lab set its realtime clock
      const offset = fromRealtimeUs(0);
      // the socket's queue is in the order frames reached it; a stamp taken on another CPU may
      // be a hair earlier than the one before it: times never run backwards in a capture
      for (let i = 0; i < frames.length; i++) {
        const timeUs = Math.max(this.#lastUs, Math.round(times[i]! + offset));
        this.#lastUs = timeUs;
        const f: CapturedFrame = { timeUs, direction: outgoing[i] ? 'kernel→peer' : 'peer→kernel', data: frames[i]!, length: lengths[i]! };
        for (const l of this.#listeners) l(f);
      }
    });
  }

  /** Every frame as it is read, in the order the kernel queued them. */
  onFrame(listener: (f: CapturedFrame) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Hands every frame that has crossed until now to the listeners, before returning. */
  drain(): void {
    this.#poller?.drain();
  }

  /** How many bytes of each frame are kept from now on (headers only during a bulk transfer). */
  setSnaplen(n: number): void {
    this.#poller?.setSnaplen(n);
  }

  /** Frames the socket dropped for want of buffer since it opened (PACKET_STATISTICS). */
  drops(): number {
    const s = native().packetStats(this.fd);
    if (s.ret === 0) this.#drops += s.drops;
    return this.#drops;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  close(): void {
    this.#poller?.stop();
    this.#poller = null;
    native().closeNow(this.fd);
  }
}
