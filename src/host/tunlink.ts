// TunLink: the wire between the kernel under test and the userspace peer. Frames the kernel
// sends come out of the TUN fd (read on readiness, never blocking the loop); frames the peer
// sends are written into it. Every frame in either direction goes to the capture first.
import { wallUs } from './clock';
import { native, type TunPollerHandle } from './native';

export type Direction = 'kernel→peer' | 'peer→kernel';

export interface FrameEvent {
  timeUs: number;
  direction: Direction;
  frame: Uint8Array;
}

export interface FrameSink {
  write(timeUs: number, frame: Uint8Array): void;
}

/**
 * The wire between the system under test and the userspace peer, as a lab sees it: IP frames
 * both ways (what the peer's TcpStack needs: src/stack/link.ts, structurally), every one of
 * them recorded first. TunLink is Linux's (a TUN device); TapLink carries another OS's stack's
 * frames over a tap device (taplink.ts).
 */
export interface LabLink {
  readonly lastError: string | null;
  setSink(sink: FrameSink | null): void;
  send(frame: Uint8Array): void;
  onFrame(listener: (frame: Uint8Array, timeUs: number, more: boolean) => void): () => void;
  /** delivers at once the frames already queued (src/stack/link.ts) */
  poll(): void;
  tap(listener: (e: FrameEvent) => void): () => void;
  /**
   * Each frame once the system under test has it or gave it (its socket table then shows the
   * result): a TUN's; absent where frames reach the system on another process's time (a tap).
   */
  onDelivered?(listener: (direction: Direction, frame: Uint8Array) => void): () => void;
  close(): void;
}

/**
 * What a TUN and a tap link share: the poller on their fd; frames recorded (sink, taps) before
 * anyone acts on them, with times that never run backwards (a capture is in the order frames
 * crossed); listeners handed each batch read; the last error. Satisfies the stack's Link
 * interface (src/stack/link.ts) structurally: host/ does not import stack/.
 */
export abstract class PolledLink implements LabLink {
  readonly fd: number;
  #poller: TunPollerHandle | null;
  readonly #listeners = new Set<(frame: Uint8Array, timeUs: number, more: boolean) => void>();
  readonly #taps = new Set<(e: FrameEvent) => void>();
  #sink: FrameSink | null;
  #lastError: string | null = null;
  #lastUs = 0;

  constructor(fd: number, sink: FrameSink | null = null) {
    this.fd = fd;
    this.#sink = sink;
    const Poller = native().TunPoller;
    this.#poller = new Poller(fd, (frames, times, errno) => {
      if (errno) this.#lastError = errno;
      // Every frame queued crossed before we read the batch. One clock for both directions (this
      // process's wall clock); the reader's own stamps only space the batch.
      const now = wallUs();
      const last = times[times.length - 1] ?? 0;
      this.received(
        frames,
        frames.map((_, i) => this.stamp(now - Math.max(0, last - (times[i] ?? last)))),
      );
    });
  }

  /** A batch the poller read, each frame with its time: record what is evidence, then deliver it. */
  protected abstract received(frames: Buffer[], stamps: number[]): void;

  /** Writes a frame towards the system under test, recording it first. */
  abstract send(frame: Uint8Array): void;

  /** Time stamps never run backwards. */
  protected stamp(timeUs: number): number {
    this.#lastUs = Math.max(this.#lastUs, timeUs);
    return this.#lastUs;
  }

  protected record(frame: Uint8Array, timeUs: number, direction: Direction): void {
    this.#sink?.write(timeUs, frame);
    if (this.#taps.size) for (const t of this.#taps) t({ timeUs, direction, frame });
  }

  /** Hands a batch to the peer; `more`: the rest of the batch follows at once, so it can answer the batch as a whole. */
  protected deliver(frames: readonly Uint8Array[], stamps: readonly number[]): void {
    const n = frames.length;
    for (let i = 0; i < n; i++) for (const l of this.#listeners) l(frames[i]!, stamps[i]!, i < n - 1);
  }

  protected failed(errno: string | null): void {
    this.#lastError = errno;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  /** Replaces where frames are recorded (e.g. one pcap per variant). */
  setSink(sink: FrameSink | null): void {
    this.#sink = sink;
  }

  /** Hands over at once the frames already queued (the peer reads before it acts on a timer). */
  poll(): void {
    this.#poller?.drain();
  }

  onFrame(listener: (frame: Uint8Array, timeUs: number, more: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sees every frame in both directions (for timelines and tests). */
  tap(listener: (e: FrameEvent) => void): () => void {
    this.#taps.add(listener);
    return () => this.#taps.delete(listener);
  }

  close(): void {
    this.#poller?.stop();
    this.#poller = null;
    native().closeNow(this.fd);
  }
}

/** Linux's wire: frames the kernel sends are read from the TUN fd, the peer's are written into it. */
export class TunLink extends PolledLink {
  readonly #delivered = new Set<(direction: Direction, frame: Uint8Array) => void>();

  protected received(frames: Buffer[], stamps: number[]): void {
    // every frame of the batch recorded first, then handed to the peer, whose replies come later
    for (let i = 0; i < frames.length; i++) this.record(frames[i]!, stamps[i]!, 'kernel→peer');
    if (this.#delivered.size) for (const f of frames) for (const d of this.#delivered) d('kernel→peer', f);
    this.deliver(frames, stamps);
  }

  /** Writes a frame into the kernel, recording it first; a failed write(2) shows in lastError. */
  send(frame: Uint8Array): void {
    this.record(frame, this.stamp(wallUs()), 'peer→kernel');
    const r = native().tunWrite(this.fd, frame);
    if (r.ret < 0) this.failed(r.errno);
    else for (const d of this.#delivered) d('peer→kernel', frame);
  }

  /**
   * Called as each frame is handed over: a kernel frame once read (before the peer sees it), a
   * peer frame once write(2) returned — by then the kernel has processed it (a TUN delivers a
   * written frame to the stack inside the write), so its socket table shows the result.
   */
  onDelivered(listener: (direction: Direction, frame: Uint8Array) => void): () => void {
    this.#delivered.add(listener);
    return () => this.#delivered.delete(listener);
  }
}
