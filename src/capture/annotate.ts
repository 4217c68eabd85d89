// The annotated copy of a capture: the same frames as a pcapng, each carrying twlab's marks and,
// where a close pattern was recognised, what it was (the lab that shows it named), as a packet
// comment — what Wireshark shows in the packet list and Expert Info, and `tshark -e frame.comment`
// prints. Written from a finished capture and its analysis (the marks need the frames around each one).
import type { FlowSummary, Mark } from './flows';
import { PcapngWriter, type PcapFile } from './pcap';
import { ConnectionSummaries, PATTERNS } from './summary';

const MARK_TEXT: Partial<Record<Mark, string>> = {
  rst: 'RST',
  retransmission: 'retransmission',
  'zero-window': 'zero window',
  'window-probe': 'window probe',
  'challenge-ack': 'challenge ACK (RFC 5961)',
  'out-of-window': 'out of window',
  'old-timestamp': 'old timestamp (PAWS rejects it)',
};

/** Frame number → its comment: the marks, a stray's origin, and the close patterns it shows. */
export function annotations(flows: FlowSummary): Map<number, string> {
  const notes = new Map<number, string[]>();
  const add = (n: number, text: string): void => {
    const list = notes.get(n) ?? [];
    if (!list.includes(text)) list.push(text);
    notes.set(n, list);
  };
  const summaries = new ConnectionSummaries();
  for (const s of flows.segments) {
    summaries.push(s);
    for (const m of s.marks) {
      if (m === 'stray')
        add(s.number, `STRAY: a segment of incarnation ${s.strayFrom} of ${s.flow.replace('<>', ' ↔ ')}, seen in incarnation ${s.current}`);
      else if (MARK_TEXT[m]) add(s.number, MARK_TEXT[m]!);
    }
    if (s.checksumOk === false) add(s.number, 'bad TCP checksum');
  }
  for (const c of summaries.connections()) {
    for (const p of c.patterns) {
      // an RST after the other side's data is unread data (lab 07) or SO_LINGER {1,0} (lab 05): both labs named
      const labs = p.id === 'abort-unread' ? '07 (unread data), 05 (SO_LINGER {1,0})' : p.lab;
      for (const n of p.frames) add(n, `${PATTERNS[p.id].name}: ${p.text}${labs ? ` (twlab run ${labs})` : ''}`);
    }
  }
  // a bare "RST" beside a close pattern named for the RST ("RST after received data: …") says it twice
  return new Map(
    [...notes].map(([n, l]) => [n, (l.some((x) => x !== 'RST' && x.startsWith('RST')) ? l.filter((x) => x !== 'RST') : l).join('; ')]),
  );
}

/** Writes `pcapng`: every frame of `file`, with its comment. Returns how many frames carry one. */
export function writeAnnotated(file: PcapFile, flows: FlowSummary, pcapng: string): number {
  const notes = annotations(flows);
  const w = new PcapngWriter(pcapng, { linkType: file.linkType });
  try {
    for (const r of file.records) w.write(r.timeUs, r.data, r.origLength, notes.get(r.number));
  } finally {
    w.close();
  }
  return notes.size;
}
