// The annotated copy of a capture: the same frames as a pcapng, each carrying twlab's marks and,
// where a close pattern was recognised, what it was (the lab that shows it named), as a packet
// comment — what Wireshark shows in the packet list and Expert Info, and `tshark -e frame.comment`
// prints. Written from a finished capture (the marks need the frames around each one).
import { FlowAnalyzer, type FlowSegment, type Mark } from './flows';
import { openCapture, PcapngWriter } from './pcap';
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
export function annotations(file: string): Map<number, string> {
  const notes = new Map<number, string[]>();
  const add = (n: number, text: string): void => {
    const list = notes.get(n) ?? [];
    if (!list.includes(text)) list.push(text);
    notes.set(n, list);
  };
  const summaries = new ConnectionSummaries();
  const analyzer = new FlowAnalyzer({
    keepSegments: false,
    onSegment: (s: FlowSegment) => {
      summaries.push(s);
      for (const m of s.marks) {
        if (m === 'stray') add(s.number, `STRAY: a segment of incarnation ${s.strayFrom} of ${s.flow.replace('<>', ' ↔ ')}, seen in incarnation ${s.current}`);
        else if (MARK_TEXT[m]) add(s.number, MARK_TEXT[m]!);
      }
      if (s.checksumOk === false) add(s.number, 'bad TCP checksum');
    },
  });
  for (const rec of openCapture(file)) analyzer.push(rec);
  for (const c of summaries.connections()) {
    for (const p of c.patterns) {
      for (const n of p.frames) add(n, `${PATTERNS[p.id].name}: ${p.text}${p.lab ? ` (twlab run ${p.lab})` : ''}`);
    }
  }
  return new Map([...notes].map(([n, l]) => [n, l.join('; ')]));
}

/** Writes `pcapng`: every frame of `pcap`, with its comment. Returns how many frames carry one. */
export function writeAnnotated(pcap: string, pcapng: string): number {
  const notes = annotations(pcap);
  const w = new PcapngWriter(pcapng);
  try {
    for (const r of openCapture(pcap)) w.write(r.timeUs, r.data, r.origLength, notes.get(r.number));
  } finally {
    w.close();
  }
  return notes.size;
}
