// The state timeline of one variant: each side's TCP states as bands over time, every syscall
// that took time as a bar of its duration (a linger close that blocked 3 s is a 3 s bar).
// Pure: from timeline events to an SVG string.
import { escapeXml as esc } from './html';

export interface TimelineInput {
  start: number; // µs
  end: number; // µs
  kernel: Array<{ at: number; socket: string; state: string | null }>;
  peer: Array<{ at: number; conn: string; to: string }>;
  syscalls: Array<{ at: number; call: string; fd: number; elapsedMs?: number; errno: string | null; ret: number }>;
}

const STATE_COLOURS: Record<string, string> = {
  ESTABLISHED: '#9c6',
  SYN_SENT: '#9cf',
  'SYN-SENT': '#9cf',
  SYN_RECV: '#9cf',
  'SYN-RECEIVED': '#9cf',
  LISTEN: '#ddd',
  FIN_WAIT1: '#fc6',
  'FIN-WAIT-1': '#fc6',
  FIN_WAIT2: '#fb4',
  'FIN-WAIT-2': '#fb4',
  CLOSE_WAIT: '#c9f',
  'CLOSE-WAIT': '#c9f',
  LAST_ACK: '#b8e',
  'LAST-ACK': '#b8e',
  CLOSING: '#f96',
  TIME_WAIT: '#e55',
  'TIME-WAIT': '#e55',
};

/** A tick spacing for a span of `us` microseconds: about five to ten ticks, at 1, 2 or 5 × 10^n seconds. */
function tickStep(us: number): number {
  const raw = us / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw) ?? 10 * p;
}

const fmtS = (us: number, stepUs: number): string =>
  `${(us / 1e6).toFixed(stepUs >= 1e6 ? 0 : stepUs >= 1e5 ? 1 : stepUs >= 1e4 ? 2 : 3)} s`;

export function renderTimelineSvg(t: TimelineInput, maxLanes = 8): string {
  const W = 860;
  const x0 = 230;
  const span = Math.max(1, t.end - t.start);
  const x = (us: number): number => x0 + ((Math.min(Math.max(us, t.start), t.end) - t.start) / span) * (W - x0 - 20);
  const lanes: Array<{ name: string; bands: Array<{ from: number; to: number; state: string }> }> = [];
  const bandsOf = (name: string, changes: Array<{ at: number; state: string | null }>): void => {
    const bands: Array<{ from: number; to: number; state: string }> = [];
    changes.forEach((c, i) => {
      if (c.state === null) return;
      bands.push({ from: c.at, to: changes[i + 1]?.at ?? t.end, state: c.state });
    });
    if (bands.length) lanes.push({ name, bands });
  };
  // each connection's kernel lane, then its peer's (the peer names it the other way round)
  const kernelSockets = [...new Set(t.kernel.map((k) => k.socket))].filter(
    (s) => !t.kernel.every((k) => k.socket !== s || k.state === 'LISTEN' || k.state === null),
  );
  const peerConns = [...new Set(t.peer.map((p) => p.conn))];
  const reversed = (c: string): string => c.split('→').reverse().join('→');
  for (const s of kernelSockets) {
    bandsOf(
      `kernel ${s}`,
      t.kernel.filter((k) => k.socket === s).map((k) => ({ at: k.at, state: k.state })),
    );
    const peer = peerConns.find((c) => reversed(c) === s);
    if (peer)
      bandsOf(
        `peer ${peer}`,
        t.peer.filter((p) => p.conn === peer).map((p) => ({ at: p.at, state: p.to === 'CLOSED' ? null : p.to })),
      );
  }
  for (const c of peerConns.filter((c) => !kernelSockets.includes(reversed(c))))
    bandsOf(
      `peer ${c}`,
      t.peer.filter((p) => p.conn === c).map((p) => ({ at: p.at, state: p.to === 'CLOSED' ? null : p.to })),
    );
  const shown = lanes.slice(0, maxLanes);
  const slow = t.syscalls.filter((s) => (s.elapsedMs ?? 0) >= 1);
  const laneH = 22;
  const states = [...new Set(shown.flatMap((l) => l.bands.map((b) => b.state.replace(/ .*/, ''))))];
  const legendTop = 30 + shown.length * laneH + 6;
  const legendRows = Math.ceil(states.length / 6);
  const sysTop = legendTop + legendRows * 16 + 10;
  const h = sysTop + 20 + Math.min(slow.length, 12) * 16 + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="11">`,
  ];
  // the time axis, with ticks (a 60 s TIME_WAIT reads off it)
  const stepUs = tickStep(span);
  for (let us = 0; us <= span; us += stepUs) {
    const xx = x(t.start + us);
    parts.push(
      `<line x1="${xx.toFixed(1)}" y1="18" x2="${xx.toFixed(1)}" y2="${legendTop - 4}" stroke="#eee"/><text x="${xx.toFixed(1)}" y="14" text-anchor="${us === 0 ? 'start' : 'middle'}" fill="#555">${fmtS(us, stepUs)}</text>`,
    );
  }
  shown.forEach((lane, i) => {
    const y = 24 + i * laneH;
    parts.push(`<text x="${x0 - 6}" y="${y + 14}" text-anchor="end">${esc(lane.name)}</text>`);
    for (const b of lane.bands) {
      const w = Math.max(1, x(b.to) - x(b.from));
      const dur = (b.to - b.from) / 1e6;
      parts.push(
        `<g class="band" data-state="${esc(b.state.replace(/ .*/, ''))}"><rect x="${x(b.from).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${STATE_COLOURS[b.state.replace(/ .*/, '')] ?? '#ccc'}"><title>${esc(`${b.state}: ${dur >= 1 ? dur.toFixed(1) : (dur * 1000).toFixed(1)} ${dur >= 1 ? 's' : 'ms'}`)}</title></rect>`,
      );
      if (w > 60)
        parts.push(
          `<text x="${(x(b.from) + 4).toFixed(1)}" y="${y + 13}">${esc(b.state)}${w > 160 ? ` · ${dur >= 1 ? `${dur.toFixed(1)} s` : `${(dur * 1000).toFixed(0)} ms`}` : ''}</text>`,
        );
      parts.push('</g>');
    }
  });
  if (lanes.length > shown.length)
    parts.push(
      `<text x="${x0}" y="${legendTop + 10}" fill="#555">… ${lanes.length - shown.length} more lanes (connections) not drawn</text>`,
    );
  // every state drawn, named: a band too narrow for its name is read by its colour
  states.forEach((st, i) => {
    const lx = x0 + (i % 6) * 104;
    const ly = legendTop + (lanes.length > shown.length ? 14 : 0) + Math.floor(i / 6) * 16;
    parts.push(
      `<g class="legend"><rect x="${lx}" y="${ly}" width="12" height="12" fill="${STATE_COLOURS[st] ?? '#ccc'}"/><text x="${lx + 16}" y="${ly + 10}">${esc(st)}</text></g>`,
    );
  });
  parts.push(`<text x="${x0 - 6}" y="${sysTop + 12}" text-anchor="end" font-weight="bold">syscalls ≥ 1 ms</text>`);
  slow.slice(0, 12).forEach((s, i) => {
    const y = sysTop + 20 + i * 16;
    const x1 = x(s.at);
    const x2 = x(s.at + (s.elapsedMs ?? 0) * 1000);
    parts.push(
      `<g class="syscall"><text x="${x0 - 6}" y="${y + 10}" text-anchor="end">${esc(`${s.call}(fd ${s.fd}) → ${s.errno ?? s.ret}`)}</text>`,
    );
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="12" fill="#57a"><title>${esc(`${s.call} ${(s.elapsedMs ?? 0).toFixed(1)} ms`)}</title></rect>`,
    );
    parts.push(
      `<text x="${(Math.max(x2, x1 + 2) + 4).toFixed(1)}" y="${y + 10}" fill="#333">${(s.elapsedMs ?? 0).toFixed(1)} ms</text></g>`,
    );
  });
  if (slow.length > 12) parts.push(`<text x="${x0}" y="${h - 8}" fill="#555">… ${slow.length - 12} more</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
