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

/** Satisfies the stack's Link interface (src/stack/link.ts) structurally: host/ does not import stack/. */
export class TunLink {
  readonly fd: number;
  #poller: TunPollerHandle | null;
  #listeners = new Set<(frame: Uint8Array, timeUs: number) => void>();
  #taps = new Set<(e: FrameEvent) => void>();
  #sink: FrameSink | null;
  #lastError: string | null = null;

  constructor(fd: number, sink: FrameSink | null = null) {
    this.fd = fd;
    this.#sink = sink;
    const Poller = native().TunPoller;
    this.#poller = new Poller(fd, (frames, times, errno) => {
      if (errno) this.#lastError = errno;
      frames.forEach((f, i) => this.#deliver(f, times[i] ?? wallUs()));
    });
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  /** Replaces where frames are recorded (e.g. one pcap per variant). */
  setSink(sink: FrameSink | null): void {
    this.#sink = sink;
  }

  #deliver(frame: Uint8Array, timeUs: number): void {
    this.#sink?.write(timeUs, frame);
    for (const t of this.#taps) t({ timeUs, direction: 'kernel→peer', frame });
    for (const l of this.#listeners) l(frame, timeUs);
  }

  /** Writes a frame into the kernel, recording it first; a failed write(2) shows in lastError. */
  send(frame: Uint8Array): void {
    const timeUs = wallUs();
    this.#sink?.write(timeUs, frame);
    for (const t of this.#taps) t({ timeUs, direction: 'peer→kernel', frame });
    const r = native().tunWrite(this.fd, frame);
    if (r.ret < 0) this.#lastError = r.errno;
  }

  onFrame(listener: (frame: Uint8Array, timeUs: number) => void): () => void {
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
