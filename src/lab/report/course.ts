// A course through the labs: an order that builds from "who waits in TIME_WAIT" to "why TIME_WAIT
// exists", one sentence of what each lab teaches and what to look at in its capture. Printed by
// `twlab course`; `twlab course --html` writes one offline page linking the labs' reports.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { escapeXml as esc } from '../../capture/html';
import { allLabs } from '../run/registry';
import { labDirName, type LabDefinition, type LabResult } from '../api/types';

export interface CourseStep {
  lab: string;
  /** one sentence: what the lab teaches */
  teaches: string;
  /** what to look at in the capture (and where) */
  look: string;
}

// Written as the questions each lab answers, not as its answers: the run gives those (and a
// student should predict them first).
export const COURSE: readonly CourseStep[] = [
  {
    lab: '02',
    teaches: 'Which side of a closed connection waits in TIME_WAIT, for how long, and whether tcp_fin_timeout changes that.',
    look: 'kernel-closes-first.pcap: whose FIN comes first; the state timeline in the report: the TIME_WAIT band and its length.',
  },
  {
    lab: '09',
    teaches: 'What happens when both sides close at the same moment: the states each passes, and who waits in TIME_WAIT.',
    look: 'crossing-fins.pcap: the two FINs, and what each one acknowledges.',
  },
  {
    lab: '08',
    teaches: "How long a half-closed connection waits for the peer's FIN, with and without the application holding the socket.",
    look: "closed-orphaned.pcap: what the kernel answers when the peer's data comes late.",
  },
  {
    lab: '05',
    teaches: 'What close() with SO_LINGER {1,0} puts on the wire, what becomes of unsent data, and whether anything waits afterwards.',
    look: 'established-idle.pcap: what goes where a FIN would be (the .pcapng says why in a packet comment).',
  },
  {
    lab: '06',
    teaches: 'How long close() with SO_LINGER {1,N} blocks, and what becomes of unsent data when N runs out.',
    look: "peer-stalls.pcap: zero windows, the kernel's probes, and what crosses after close() returned.",
  },
  {
    lab: '17',
    teaches:
      'How long the kernel keeps trying to deliver a closed socket\'s unsent data when the peer has gone silent: the "default linger time".',
    look: 'silent-peer.pcap: the retransmissions after close(), each further apart than the last, then silence.',
  },
  {
    lab: '07',
    teaches: 'What closing with received data unread puts on the wire, and whether SO_LINGER changes it.',
    look: "linger-off.pcap: the peer's data acknowledged, then the kernel's last segment.",
  },
  {
    lab: '03',
    teaches: 'Which socket flags let a restarted server bind the port its old connection holds in TIME_WAIT.',
    look: 'the matrix in the output: old listener flags × new socket flags.',
  },
  {
    lab: '04',
    teaches: 'When a client may reconnect from the port of a connection in TIME_WAIT, and what connect() says when it may not.',
    look: 'same-remote.pcap: the second SYN on the very same four-tuple.',
  },
  {
    lab: '01',
    teaches: 'The whole bind() matrix — SO_REUSEADDR, SO_REUSEPORT, wildcard and specific addresses, users — against the BSD rules.',
    look: 'no capture: bind() puts nothing on the wire; read the table and the errno.',
  },
  {
    lab: '16',
    teaches:
      'Which socket gets a datagram or a connection when one holds the wildcard address and another a specific address on the same port.',
    look: 'udp.pcap and tcp.pcap: what was sent to each address; the output says which socket received it.',
  },
  {
    lab: '15',
    teaches:
      "How SO_REUSEPORT spreads connections over sockets, which socket a connected UDP socket's endpoint reaches, and who may join a group.",
    look: 'tcp-connections.pcap: many handshakes on one port; the histogram in the output.',
  },
  {
    lab: '12',
    teaches: 'When a TIME_WAIT lets a new connection in on the same four-tuple, and what it answers when it does not.',
    look: "seq-below-no-ts.pcap: the kernel's answer to a SYN below the old sequence space.",
  },
  {
    lab: '13',
    teaches:
      'What an RST does to a connection in TIME_WAIT (RFC 1337), and what tcp_rfc1337 changes; and which socket a late segment reaches when a new one is bound beside the TIME_WAIT.',
    look: "rfc1337-0.pcap: the RST after the close, then whether the port is free; beside-new-listener.pcap: the TIME_WAIT's ACK of the old connection answering the late data.",
  },
  {
    lab: '11',
    teaches: 'Why TIME_WAIT exists: what a delayed segment of an old connection does to a new one on the same four-tuple.',
    look: 'linger-abort.pcap: the STRAY segment in the second incarnation (marked in the .pcapng and the ladder).',
  },
  {
    lab: '10',
    teaches: 'What happens to connections closing beyond tcp_max_tw_buckets.',
    look: 'the TIME_WAIT count and the TCPTimeWaitOverflow counter in the output.',
  },
  {
    lab: '14',
    teaches: 'How Linux answers the segments a blind attacker would send, and how often.',
    look: "probes.pcap: each probe and the kernel's answer right after it.",
  },
];

function steps(): Array<CourseStep & { def: LabDefinition }> {
  const labs = allLabs();
  return COURSE.flatMap((s) => {
    const def = labs.find((l) => l.id === s.lab);
    return def ? [{ ...s, def }] : [];
  });
}

export function formatCourse(): string[] {
  const out = ['A course through the labs — run each with --predict, predict, then look:', ''];
  steps().forEach((s, i) => {
    out.push(`${String(i + 1).padStart(2)}. ${s.def.id} ${s.def.slug} — ${s.def.title}`);
    out.push(`    teaches: ${s.teaches}`);
    out.push(`    look at: ${s.look}`);
    out.push(`    run:     twlab run ${s.def.id} --predict`);
    out.push('');
  });
  out.push("`twlab course --html` writes this as a page that links each lab's report (run the labs first: twlab run all).");
  return out;
}

/** Writes `<outDir>/course.html`: the course, each step linked to its report when the lab has run there. */
export function writeCourseHtml(outDir: string): string {
  const items = steps().map((s, i) => {
    const dir = labDirName(s.def);
    const resultFile = path.join(outDir, dir, 'result.json');
    let result: LabResult | null = null;
    try {
      result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as LabResult;
    } catch {
      // not run yet
    }
    const report = result
      ? `<a href="${esc(dir)}/report.html">the report</a> (run ${esc(result.startedAt)}, Linux ${esc(result.kernel)})`
      : `not run here yet: <code>twlab run ${esc(s.def.id)}</code>`;
    const questions = (s.def.questions ?? [])
      .map((q) => `<li>${esc(q.text)} <span class="meta">(${esc(q.choices.join(' · '))})</span></li>`)
      .join('');
    return `<li><h2>${i + 1}. Lab ${esc(s.def.id)} — ${esc(s.def.title)}</h2>
<p><strong>Teaches.</strong> ${esc(s.teaches)}</p>
${questions ? `<p><strong>Predict first.</strong></p><ul>${questions}</ul>` : ''}
<p><strong>Look at.</strong> ${esc(s.look)}</p>
<p>${report}</p></li>`;
  });
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twlab — a course through the labs</title>
<style>body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222;line-height:1.45}ol{list-style:none;padding-left:0}li h2{font-size:1.15rem;margin:1.5rem 0 .3rem}.meta{color:#555}code{font-family:ui-monospace,monospace}</style></head>
<body><h1>twlab — a course through the labs</h1>
<p>Each lab asks its questions before it runs (<code>twlab run NN --predict</code>): predict, then look at what the kernel did. The reports step through each connection segment by segment.</p>
<ol>
${items.join('\n')}
</ol></body></html>
`;
  const file = path.join(outDir, 'course.html');
  const temporary = `${file}.${process.pid}`;
  try {
    fs.writeFileSync(temporary, html);
    fs.renameSync(temporary, file);
  } catch (e) {
    fs.rmSync(temporary, { force: true }); // a full disk leaves no half-written page behind
    throw e;
  }
  return file;
}
