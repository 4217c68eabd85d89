// The stack's own cost per frame, with no kernel: a sender stack and a receiver stack joined by
// a link that hands frames over in batches (as the TUN does), on a virtual clock. Prints µs of
// CPU per data segment for the whole exchange (both stacks), and the heap allocated per frame.
import { VirtualClock } from '../src/stack/clock';
import type { Link } from '../src/stack/link';
import { TcpStack, type Connection } from '../src/stack/stack';

/** Two ends: frames sent by one are queued and delivered to the other in batches when pumped. */
class BatchLink implements Link {
  peer!: BatchLink;
  queue: Uint8Array[] = [];
  frames = 0;
  #listeners: Array<(frame: Uint8Array, timeUs: number, more?: boolean) => void> = [];
  send(frame: Uint8Array): void {
    this.peer.queue.push(frame);
    this.frames++;
  }
  onFrame(l: (frame: Uint8Array, timeUs: number, more?: boolean) => void): () => void {
    this.#listeners.push(l);
    return () => (this.#listeners = this.#listeners.filter((x) => x !== l));
  }
  /** Delivers what is queued as one batch; returns how many frames. */
  pump(): number {
    const batch = this.queue;
    this.queue = [];
    for (let i = 0; i < batch.length; i++) for (const l of this.#listeners) l(batch[i]!, 0, i < batch.length - 1);
    return batch.length;
  }
}

export interface PathFigure {
  usPerSegment: number;
  segments: number;
  framesPerSegment: number;
  /** heap bytes allocated per frame (both stacks), from pumps no garbage collection interrupted */
  heapPerFrame: number;
}

/** Moves `bytes` from a to b over a batching in-memory link; returns CPU time per data segment. */
export function stackPath(bytes: number): PathFigure {
  const clock = new VirtualClock();
  const la = new BatchLink();
  const lb = new BatchLink();
  la.peer = lb;
  lb.peer = la;
  const a = new TcpStack(la, { addresses: ['192.0.2.1'], clock, random: () => 0.5 });
  const b = new TcpStack(lb, { addresses: ['192.0.2.2'], clock, random: () => 0.25 });
  let server: Connection | null = null;
  b.listen(80).onConnection((c) => (server = c));
  const c = a.connect({ local: { address: '192.0.2.1' }, remote: { address: '192.0.2.2', port: 80 } });
  for (let i = 0; i < 10 && !server; i++) {
    la.pump();
    lb.pump();
    clock.advance(1);
  }
  let got = 0;
  server!.onData((d) => (got += d.length));
  const data = new Uint8Array(bytes);
  c.write(data);
  const t0 = process.cpuUsage();
  let heap = 0;
  let heapFrames = 0;
  while (got < bytes) {
    const h0 = process.memoryUsage().heapUsed;
    const n = la.pump() + lb.pump();
    const h1 = process.memoryUsage().heapUsed;
    if (h1 >= h0 && n > 0) {
      heap += h1 - h0;
      heapFrames += n;
    }
    if (n === 0) clock.advance(1);
  }
  const t = process.cpuUsage(t0);
  const segments = Math.ceil(bytes / c.tcb.effMss());
  return {
    usPerSegment: (t.user + t.system) / segments,
    segments,
    framesPerSegment: (la.frames + lb.frames) / segments,
    heapPerFrame: heap / Math.max(1, heapFrames),
  };
}

if (require.main === module) {
  for (let i = 0; i < 3; i++) stackPath(8 << 20); // warm up
  const f = stackPath(64 << 20);
  console.log(
    `stack ↔ stack in memory: ${f.usPerSegment.toFixed(2)} µs CPU per data segment (${f.segments} segments, ${f.framesPerSegment.toFixed(2)} frames each), ${f.heapPerFrame.toFixed(0)} heap bytes per frame`,
  );
}
