// timeline.json: what a lab run saw, on one clock (CLOCK_REALTIME, microseconds) — the kernel's
// syscalls and socket table, the frames, the peer's states and segments, counters and sysctls.
// One type for the writer (the lab context, src/lab/api/context.ts; written out by
// src/lab/run/lab-main.ts) and every reader (the HTML report, `twlab show`'s ladders, the tests).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A syscall on a kernel socket, as the system under test answered it (src/host/ksocket.ts's SyscallRecord). */
export interface SyscallEvent {
  kind: 'syscall';
  at: number;
  variant: string | null;
  /** the connection the socket was, when it was one (local>remote), for drawing the call on its ladder */
  conn?: string;
  fd: number;
  call: string;
  args: Record<string, unknown>;
  ret: number;
  /** the errno's name ('EADDRINUSE'), null when the call succeeded */
  errno: string | null;
  elapsedMs?: number;
}

export interface FrameEvent {
  kind: 'frame';
  at: number;
  variant: string | null;
  direction: string;
  bytes: number;
  /** the frame's number in its variant's capture, as Wireshark numbers it */
  number: number;
}

export interface NoteEvent {
  kind: 'note';
  at: number;
  variant: string | null;
  text: string;
}

export interface VariantEvent {
  kind: 'variant';
  at: number;
  variant: string;
  phase: 'start' | 'end';
}

/** A kernel socket appeared, changed state or timer, or vanished (state null); followed by four-tuple (a listener by its inode). */
export interface KernelEvent {
  kind: 'kernel';
  at: number;
  variant: string | null;
  local: string;
  remote: string;
  state: string | null;
  timer: string | null;
  timerMs: number | null;
  inode?: number;
}

export interface CountersEvent {
  kind: 'counters';
  at: number;
  variant: string | null;
  delta: Record<string, number>;
}

export interface PeerStateEvent {
  kind: 'peer-state';
  at: number;
  variant: string | null;
  local: string;
  remote: string;
  from: string;
  to: string;
}

export interface PeerSegmentEvent {
  kind: 'peer-segment';
  at: number;
  variant: string | null;
  direction: 'in' | 'out';
  local: string;
  remote: string;
  flags: string;
  seq: number;
  ack: number;
  len: number;
  window: number;
  /** how long the peer held an outgoing segment back after building it (a lab's wire delay) */
  heldMs?: number;
}

export interface SysctlEvent {
  kind: 'sysctl';
  at: number;
  variant: string | null;
  name: string;
  value: string;
}

/** A peer `expect` (src/stack/expect.ts): what it waited for, and the segment that came or how long nothing did. */
export interface PeerExpectEvent {
  kind: 'peer-expect';
  at: number;
  variant: string | null;
  what: string;
  came: boolean;
  ms: number;
  flags?: string;
  seq?: number;
  ack?: number;
  len?: number;
}

export type TimelineEvent =
  | SyscallEvent
  | FrameEvent
  | NoteEvent
  | VariantEvent
  | KernelEvent
  | CountersEvent
  | PeerStateEvent
  | PeerSegmentEvent
  | SysctlEvent
  | PeerExpectEvent;

/** The file itself. */
export interface TimelineFile {
  lab: string;
  /** which clock `at` is on, and who stamped the frames */
  clock: string;
  events: TimelineEvent[];
}

export const TIMELINE_FILE = 'timeline.json';

export function writeTimeline(dir: string, timeline: TimelineFile): void {
  fs.writeFileSync(path.join(dir, TIMELINE_FILE), JSON.stringify(timeline) + '\n');
}

/** The events of the timeline.json in `dir` ([] when there is none or it cannot be read: a report or ladder without states). */
export function readTimelineEvents(dir: string): TimelineEvent[] {
  try {
    const events = (JSON.parse(fs.readFileSync(path.join(dir, TIMELINE_FILE), 'utf8')) as Partial<TimelineFile>).events;
    return Array.isArray(events) ? events : [];
  } catch {
    return [];
  }
}
