// The TCB per state, in the manner of smoltcp's tests: a TCB built *in* a state, segments from
// templates, and exactly the segments it must answer with — nothing more.
import { describe, expect, it } from 'vitest';
import { seq, seqAdd } from '../src/wire/seq';
import { emitTcpFrame } from '../src/wire/frame';
import { flags, formatFlags, type TcpOption } from '../src/wire/tcp';
import { Tcb } from '../src/stack/tcb';
import {
  bytes,
  CFG,
  expectSegments,
  FIXTURES,
  LOCAL_PORT,
  LOCAL_SEQ,
  RECV_TEMPL,
  recv,
  REMOTE_PORT,
  REMOTE_SEQ,
  send,
  SEND_TEMPL,
  SYN_FROM_PEER,
  T0,
  tcbCloseWait,
  tcbClosing,
  tcbEstablished,
  tcbFinWait1,
  tcbFinWait2,
  tcbLastAck,
  tcbSynReceived,
  tcbSynSent,
  tcbTimeWait,
  WIN,
} from './fixtures/tcb';

function states(t: Tcb): string[] {
  return t.events.filter((e) => e.kind === 'state').map((e) => (e.kind === 'state' ? `${e.from}→${e.to}` : ''));
}

describe('fixtures', () => {
  it.each(FIXTURES)('builds a TCB in %s', (state, make) => {
    expect(make().state).toBe(state);
  });
});

// ---------------------------------------------------------------- SYN-SENT
describe('SYN-SENT', () => {
  it('CLOSED → SYN-SENT: the SYN carries our options in the order and layout Linux sends them (a 40-byte header)', () => {
    const t = Tcb.connect({ ...CFG, timestamps: true, wscale: 7, sackPermitted: true }, LOCAL_PORT, REMOTE_PORT, T0);
    const [syn] = recv(t, T0, [
      { flags: 'SYN', seq: LOCAL_SEQ, ack: 0, window: WIN, opts: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }, { kind: 'timestamps', tsval: T0, tsecr: 0 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }] },
    ]);
    expect(states(t)).toEqual(['CLOSED→SYN-SENT']);
    const frame = emitTcpFrame('192.0.2.2', '192.0.2.1', syn!);
    expect(frame[20 + 12]! >> 4).toBe(10); // data offset: 40 bytes, no EOL padding
    // without SACK: NOP NOP before the timestamps; without timestamps: NOP NOP before SACK-permitted
    recv(Tcb.connect({ ...CFG, timestamps: true, wscale: 7 }, LOCAL_PORT, REMOTE_PORT, T0), T0, [
      { flags: 'SYN', seq: LOCAL_SEQ, ack: 0, opts: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamps', tsval: T0, tsecr: 0 }, { kind: 'nop' }, { kind: 'wscale', shift: 7 }] },
    ]);
    recv(Tcb.connect({ ...CFG, sackPermitted: true }, LOCAL_PORT, REMOTE_PORT, T0), T0, [{ flags: 'SYN', seq: LOCAL_SEQ, ack: 0, opts: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'sackPermitted' }] }]);
  });
  it('a SYN,ACK acknowledging our SYN: ESTABLISHED, and an ACK', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 1), flags: flags('syn,ack') }, [RECV_TEMPL]);
    expect(t.state).toBe('ESTABLISHED');
    expect(t.timers.has('retransmit')).toBe(false);
  });
  it('a SYN alone (simultaneous open): SYN-RECEIVED, and a SYN,ACK', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, ack: seq(0), flags: flags('syn') }, [{ flags: 'SYN,ACK', seq: LOCAL_SEQ, ack: seqAdd(REMOTE_SEQ, 1) }]);
    expect(t.state).toBe('SYN-RECEIVED');
    // the peer's SYN,ACK then completes it (RFC 9293 figure 8)
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 1), flags: flags('syn,ack') }, [RECV_TEMPL]);
    expect(t.state).toBe('ESTABLISHED');
  });
  it('an ACK for something we never sent: RST <SEQ=SEG.ACK>, state unchanged', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 100), flags: flags('syn,ack') }, [{ flags: 'RST', seq: seqAdd(LOCAL_SEQ, 100), ack: 0 }]);
    expect(t.state).toBe('SYN-SENT');
  });
  it('RST with an acceptable ACK: connection refused, CLOSED', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: seq(0), ack: seqAdd(LOCAL_SEQ, 1), flags: flags('rst,ack') });
    expect(t.state).toBe('CLOSED');
    expect(t.events.some((e) => e.kind === 'reset' && e.reason === 'refused')).toBe(true);
  });
  it('RST without ACK is ignored', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, flags: flags('rst') });
    expect(t.state).toBe('SYN-SENT');
  });
  it('the SYN is retransmitted after the RTO, with back-off, then the attempt times out', () => {
    const t = tcbSynSent({ synRetries: 2 });
    recv(t, T0 + 999, []);
    recv(t, T0 + 1000, [{ flags: 'SYN', seq: LOCAL_SEQ, ack: 0 }]);
    recv(t, T0 + 2999, []);
    recv(t, T0 + 3000, [{ flags: 'SYN', seq: LOCAL_SEQ, ack: 0 }]);
    recv(t, T0 + 7000, []);
    expect(t.state).toBe('CLOSED');
    expect(t.events.some((e) => e.kind === 'reset' && e.reason === 'timeout')).toBe(true);
  });
  it('CLOSE: straight to CLOSED', () => {
    const t = tcbSynSent();
    t.close(T0);
    expect(t.state).toBe('CLOSED');
  });
});

// ---------------------------------------------------------------- SYN-RECEIVED
describe('SYN-RECEIVED', () => {
  it('LISTEN → SYN-RECEIVED: a SYN,ACK answering the options the peer offered, and only those', () => {
    const t = Tcb.accept({ ...CFG, timestamps: true, wscale: 7, sackPermitted: true }, { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1400 }, { kind: 'nop' }, { kind: 'wscale', shift: 9 }] }, T0);
    recv(t, T0, [{ flags: 'SYN,ACK', seq: LOCAL_SEQ, ack: seqAdd(REMOTE_SEQ, 1), options: ['mss', 'wscale'] }]);
    expect(states(t)).toEqual(['LISTEN→SYN-RECEIVED']);
    expect([t.peerMss, t.sndShift, t.rcvShift, t.tsEnabled, t.sackEnabled]).toEqual([1400, 9, 7, false, false]);
  });
  it('the ACK of our SYN: ESTABLISHED, nothing sent', () => {
    const t = tcbSynReceived();
    send(t, T0, {}, []);
    expect(t.state).toBe('ESTABLISHED');
  });
  it('the ACK carrying data: ESTABLISHED, the data taken and acknowledged', () => {
    const t = tcbSynReceived();
    send(t, T0, { payload: bytes('hello') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 6) }]);
    expect(new TextDecoder().decode(t.read())).toBe('hello');
  });
  it('an unacceptable ACK: RST <SEQ=SEG.ACK>', () => {
    const t = tcbSynReceived();
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 5) }, [{ flags: 'RST', seq: seqAdd(LOCAL_SEQ, 5), ack: 0 }]);
    expect(t.state).toBe('SYN-RECEIVED');
  });
  it('a retransmitted SYN: the SYN,ACK again', () => {
    const t = tcbSynReceived();
    send(t, T0 + 10, SYN_FROM_PEER, [{ flags: 'SYN,ACK', seq: LOCAL_SEQ, ack: seqAdd(REMOTE_SEQ, 1) }]);
  });
  it('RST at RCV.NXT (passive open): back to LISTEN, this TCB is CLOSED', () => {
    const t = tcbSynReceived();
    send(t, T0, { flags: flags('rst'), ack: seq(0) });
    expect(t.state).toBe('CLOSED');
  });
  it('our SYN,ACK is retransmitted on the RTO', () => {
    const t = tcbSynReceived();
    recv(t, T0 + 1000, [{ flags: 'SYN,ACK', seq: LOCAL_SEQ, ack: seqAdd(REMOTE_SEQ, 1) }]);
  });
  it('CLOSE: the FIN follows as soon as the handshake completes (as Linux does)', () => {
    const t = tcbSynReceived();
    t.close(T0);
    send(t, T0, {}, [{ ...RECV_TEMPL, flags: 'FIN,ACK' }]);
    expect(t.state).toBe('FIN-WAIT-1');
  });
});

// ---------------------------------------------------------------- ESTABLISHED
describe('ESTABLISHED', () => {
  it('data in order: taken, acknowledged at once, window reduced by what is unread', () => {
    const t = tcbEstablished();
    send(t, T0, { payload: bytes('abcdef') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7), window: WIN - 6 }]);
    expect(new TextDecoder().decode(t.read())).toBe('abcdef');
  });
  it('data out: segmented by the MSS, within the peer window', () => {
    const t = tcbEstablished({ mss: 4 });
    t.write(bytes('abcdefghij'));
    recv(t, T0, [
      { ...RECV_TEMPL, flags: 'ACK', payload: 'abcd' },
      { ...RECV_TEMPL, flags: 'ACK', seq: seqAdd(LOCAL_SEQ, 5), payload: 'efgh' },
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 9), payload: 'ij' },
    ]);
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 11) }, []);
    expect(t.sndUna).toBe(seqAdd(LOCAL_SEQ, 11));
    expect(t.timers.has('retransmit')).toBe(false);
  });
  it('the peer window limits what is sent: a silly sliver waits for the override timeout (RFC 9293 §3.8.6.2.1); an ACK opening the window lets the rest go', () => {
    const t = tcbEstablished({ mss: 100 });
    send(t, T0, { window: 3 });
    t.write(bytes('abcdef'));
    recv(t, T0, []); // 3 of 6 bytes: neither a full segment, nor all that is queued, nor half the largest window
    recv(t, T0 + 199, []);
    recv(t, T0 + 200, [{ ...RECV_TEMPL, payload: 'abc' }]); // the override (persist) timer, one RTO
    send(t, T0 + 201, { ack: seqAdd(LOCAL_SEQ, 4), window: 100 }, [{ ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 4), payload: 'def' }]);
  });
  it('FIN: CLOSE-WAIT, and an ACK of it', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('fin,ack') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('CLOSE-WAIT');
    expect(t.events.map((e) => e.kind)).toContain('eof');
  });
  it('FIN with data: the data, then the FIN, one ACK for both (the right edge stays put: the FIN took a sequence number, not buffer)', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('fin,psh,ack'), payload: bytes('bye') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 5), window: WIN - 4 }]);
    expect(t.state).toBe('CLOSE-WAIT');
  });
  it('CLOSE: a FIN after the queued data, FIN-WAIT-1', () => {
    const t = tcbEstablished();
    t.write(bytes('xy'));
    t.close(T0);
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'FIN,PSH,ACK', payload: 'xy' }]);
    expect(t.state).toBe('FIN-WAIT-1');
    expect(t.finSeq).toBe(seqAdd(LOCAL_SEQ, 3));
  });
  it('RST exactly at RCV.NXT: reset, CLOSED, nothing sent', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('rst'), ack: seq(0) });
    expect(t.state).toBe('CLOSED');
    expect(t.events.some((e) => e.kind === 'reset' && e.reason === 'rst-received')).toBe(true);
  });
  it('RST inside the window but not at RCV.NXT: a challenge ACK (RFC 5961 §3.2)', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 100) }, [RECV_TEMPL]);
    expect(t.state).toBe('ESTABLISHED');
    expect(t.events.some((e) => e.kind === 'challenge-ack' && e.reason === 'rst')).toBe(true);
  });
  it('RST outside the window: dropped silently', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, WIN + 10) }, []);
    expect(t.state).toBe('ESTABLISHED');
  });
  it('SYN: a challenge ACK (RFC 5961 §4), state unchanged', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('syn'), seq: seqAdd(REMOTE_SEQ, 77), ack: seq(0) }, [RECV_TEMPL]);
    expect(t.state).toBe('ESTABLISHED');
    expect(t.events.some((e) => e.kind === 'challenge-ack' && e.reason === 'syn')).toBe(true);
  });
  it('an ACK of something not yet sent: ACK, and the segment dropped (RFC 5961 §5)', () => {
    const t = tcbEstablished();
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 500), payload: bytes('zzz') }, [RECV_TEMPL]);
    expect(t.recvQ.length).toBe(0);
  });
  it('a segment wholly before RCV.NXT (an old duplicate): ACK, dropped', () => {
    const t = tcbEstablished();
    send(t, T0, { payload: bytes('ab') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 3) }]);
    send(t, T0, { payload: bytes('ab') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 3) }]);
    expect(t.recvQ.length).toBe(2);
  });
  it('a segment beyond the window: ACK, dropped', () => {
    const t = tcbEstablished();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, WIN + 100), payload: bytes('far') }, [RECV_TEMPL]);
    expect(t.recvQ.length).toBe(0);
  });
  it('out of order: a duplicate ACK at once; the missing piece then releases both', () => {
    const t = tcbEstablished();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 4), payload: bytes('def') }, [RECV_TEMPL]);
    send(t, T0, { payload: bytes('abc') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7) }]);
    expect(new TextDecoder().decode(t.read())).toBe('abcdef');
  });
  it('with SACK permitted, the duplicate ACK carries a SACK block for what we hold', () => {
    const t = tcbSynReceived({ sackPermitted: true }, { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }] });
    send(t, T0, {});
    const [ack] = send(t, T0, { seq: seqAdd(REMOTE_SEQ, 4), payload: bytes('def') }, [{ ...RECV_TEMPL, options: ['sack'] }]);
    expect(ack!.options.find((o) => o.kind === 'sack')).toEqual({ kind: 'sack', blocks: [[seqAdd(REMOTE_SEQ, 4), seqAdd(REMOTE_SEQ, 7)]] });
  });
  it('unacknowledged data is retransmitted on the RTO, from SND.UNA, with back-off', () => {
    const t = tcbEstablished();
    // the handshake took no time on this clock: RTT 0, so the RTO is its 200 ms floor
    const rto = t.rto.rtoMs;
    expect(rto).toBe(200);
    t.write(bytes('data'));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'data' }]);
    recv(t, T0 + rto - 1, []);
    recv(t, T0 + rto, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'data' }]);
    recv(t, T0 + 3 * rto - 1, []);
    recv(t, T0 + 3 * rto, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'data' }]);
    expect(t.events.filter((e) => e.kind === 'retransmit')).toHaveLength(2);
  });
  it('an RTT measured by the handshake sets the RTO (RFC 6298 §2.2)', () => {
    const t = tcbSynReceived();
    send(t, T0 + 100, {});
    expect(t.rto.srttMs).toBe(100);
    expect(t.rto.rtoMs).toBe(300); // SRTT + 4 · RTTVAR = 100 + 4 · 50
  });
  it('three duplicate ACKs: fast retransmit of the first unacknowledged segment', () => {
    const t = tcbEstablished({ mss: 2 });
    t.write(bytes('aabbccddee'));
    recv(t, T0, [
      { ...RECV_TEMPL, payload: 'aa' },
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 3), payload: 'bb' },
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 5), payload: 'cc' },
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 7), payload: 'dd' },
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 9), payload: 'ee' },
    ]);
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 3) });
    send(t, T0 + 2, { ack: seqAdd(LOCAL_SEQ, 3) });
    send(t, T0 + 3, { ack: seqAdd(LOCAL_SEQ, 3) });
    send(t, T0 + 4, { ack: seqAdd(LOCAL_SEQ, 3) }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 3), payload: 'bb' }]);
    expect(t.events.some((e) => e.kind === 'retransmit' && !e.timer)).toBe(true);
  });
  it('a zero window: nothing sent; the persist timer probes with an ACK below SND.UNA; a window update resumes', () => {
    const t = tcbEstablished();
    send(t, T0, { window: 0 });
    t.write(bytes('wait'));
    recv(t, T0, []);
    expect(t.timers.has('persist')).toBe(true);
    recv(t, T0 + 1000, [{ ...RECV_TEMPL, seq: LOCAL_SEQ }]);
    send(t, T0 + 1001, { window: 100 }, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'wait' }]);
  });
  it('the application stops reading: the window shrinks to zero; reading again reopens it at once', () => {
    const t = tcbEstablished({ rcvBuf: 10 });
    expect(t.state).toBe('ESTABLISHED');
    send(t, T0, { payload: bytes('0123456789') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 11), window: 0 }]);
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 11), payload: bytes('x') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 11), window: 0 }]);
    t.read();
    recv(t, T0, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 11), window: 10 }]);
  });
  it('held ACKs are not sent until released', () => {
    const t = tcbEstablished();
    t.holdAcks = true;
    send(t, T0, { payload: bytes('q') }, []);
    t.holdAcks = false;
    recv(t, T0, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2), window: WIN - 1 }]);
  });
  it('ABORT: RST,ACK at SND.NXT, CLOSED', () => {
    const t = tcbEstablished();
    expectSegments(t.abort(T0), [{ flags: 'RST,ACK', seq: seqAdd(LOCAL_SEQ, 1), ack: seqAdd(REMOTE_SEQ, 1) }]);
    expect(t.state).toBe('CLOSED');
  });
  it('delayed ACKs (option): the second full-sized segment or 40 ms, whichever first (RFC 5681 §4.2)', () => {
    const t = tcbEstablished({ delayedAck: true });
    const full = new Uint8Array(1000);
    send(t, T0, { payload: full }, []);
    send(t, T0 + 1, { seq: seqAdd(REMOTE_SEQ, 1001), payload: full }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2001) }]);
    send(t, T0 + 2, { seq: seqAdd(REMOTE_SEQ, 2001), payload: bytes('c') }, []);
    send(t, T0 + 3, { seq: seqAdd(REMOTE_SEQ, 2002), payload: bytes('d') }, []); // small segments are not full-sized ones
    recv(t, T0 + 41, []);
    recv(t, T0 + 42, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2003) }]);
  });
});

// ---------------------------------------------------------------- PAWS (RFC 7323 §5)
describe('PAWS', () => {
  const ts = (tsval: number): TcpOption[] => [{ kind: 'timestamps', tsval, tsecr: 0 }];
  function tcbWithTimestamps(paws = true): Tcb {
    const t = tcbSynReceived({ timestamps: true, paws }, { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1460 }, { kind: 'timestamps', tsval: 5000, tsecr: 0 }] });
    send(t, T0, { options: ts(5001) });
    return t;
  }
  it('a segment with an older timestamp: ACK, dropped, reported', () => {
    const t = tcbWithTimestamps();
    const out = send(t, T0, { options: ts(4000), payload: bytes('old') }, [{ ...RECV_TEMPL, options: ['timestamps'] }]);
    expect(out[0]!.options.find((o) => o.kind === 'timestamps')).toMatchObject({ tsecr: 5001 });
    expect(t.recvQ.length).toBe(0);
    expect(t.events.some((e) => e.kind === 'paws-reject')).toBe(true);
  });
  it('switched off, the same segment is taken', () => {
    const t = tcbWithTimestamps(false);
    send(t, T0, { options: ts(4000), payload: bytes('old') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 4) }]);
    expect(t.recvQ.length).toBe(3);
  });
});

// ---------------------------------------------------------------- closing states
describe('FIN-WAIT-1', () => {
  it('the ACK of our FIN: FIN-WAIT-2', () => {
    const t = tcbFinWait1();
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 2) }, []);
    expect(t.state).toBe('FIN-WAIT-2');
  });
  it('the peer FIN without the ACK of ours: CLOSING, and an ACK', () => {
    const t = tcbFinWait1();
    send(t, T0, { flags: flags('fin,ack') }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('CLOSING');
  });
  it('the peer FIN with the ACK of ours: TIME-WAIT at once', () => {
    const t = tcbFinWait1();
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('TIME-WAIT');
  });
  it('our FIN is retransmitted on the RTO', () => {
    const t = tcbFinWait1();
    recv(t, T0 + 1000, [{ ...RECV_TEMPL, flags: 'FIN,ACK' }]);
  });
  it('data still arrives and is taken (the peer has not closed)', () => {
    const t = tcbFinWait1();
    send(t, T0, { payload: bytes('more') }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 5) }]);
  });
});

describe('FIN-WAIT-2', () => {
  it('data is still taken (half-close)', () => {
    const t = tcbFinWait2();
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 2), payload: bytes('late') }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 5) }]);
    expect(t.state).toBe('FIN-WAIT-2');
  });
  it('the peer FIN: TIME-WAIT, an ACK, and a 2MSL timer', () => {
    const t = tcbFinWait2();
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('TIME-WAIT');
    expect(t.timers.get('time-wait')).toBe(T0 + 60_000);
  });
});

describe('CLOSING', () => {
  it('the ACK of our FIN: TIME-WAIT', () => {
    const t = tcbClosing();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 2), ack: seqAdd(LOCAL_SEQ, 2) }, []);
    expect(t.state).toBe('TIME-WAIT');
  });
  it('an ACK that does not cover our FIN: still CLOSING', () => {
    const t = tcbClosing();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 2), ack: seqAdd(LOCAL_SEQ, 1) }, []);
    expect(t.state).toBe('CLOSING');
  });
});

describe('CLOSE-WAIT', () => {
  it('we can still send', () => {
    const t = tcbCloseWait();
    t.write(bytes('reply'));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', ack: seqAdd(REMOTE_SEQ, 2), payload: 'reply' }]);
  });
  it('CLOSE: FIN, LAST-ACK', () => {
    const t = tcbCloseWait();
    t.close(T0);
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'FIN,ACK', ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('LAST-ACK');
  });
});

describe('LAST-ACK', () => {
  it('the ACK of our FIN: CLOSED', () => {
    const t = tcbLastAck();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 2), ack: seqAdd(LOCAL_SEQ, 2) }, []);
    expect(t.state).toBe('CLOSED');
  });
  it('no ACK: the FIN again on the RTO', () => {
    const t = tcbLastAck();
    recv(t, T0 + 1000, [{ ...RECV_TEMPL, flags: 'FIN,ACK', ack: seqAdd(REMOTE_SEQ, 2) }]);
  });
});

describe('TIME-WAIT', () => {
  it('a retransmitted FIN is re-ACKed and restarts 2MSL', () => {
    const t = tcbTimeWait();
    send(t, T0 + 5000, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.timers.get('time-wait')).toBe(T0 + 5000 + 60_000);
    expect(t.events.some((e) => e.kind === 'time-wait-restart')).toBe(true);
  });
  it('after 2MSL: CLOSED', () => {
    const t = tcbTimeWait();
    recv(t, T0 + 59_999, []);
    expect(t.state).toBe('TIME-WAIT');
    recv(t, T0 + 60_000, []);
    expect(t.state).toBe('CLOSED');
  });
  it('MSL is configurable', () => {
    const t = Tcb.accept({ ...CFG, mslMs: 1000 }, SYN_FROM_PEER, T0);
    t.dispatch(T0);
    send(t, T0, {});
    t.close(T0);
    t.dispatch(T0);
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.timers.get('time-wait')).toBe(T0 + 2000);
  });
  it('an RST at RCV.NXT kills it (the RFC 1337 hazard)', () => {
    const t = tcbTimeWait();
    send(t, T0, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 2), ack: seq(0) });
    expect(t.state).toBe('CLOSED');
  });
  it('other segments are answered with an ACK', () => {
    const t = tcbTimeWait();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 1), ack: seqAdd(LOCAL_SEQ, 2), payload: bytes('old') }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('TIME-WAIT');
  });
});

describe('every synchronized state answers an out-of-window segment with an ACK and nothing else', () => {
  const synced = FIXTURES.filter(([s]) => s !== 'SYN-SENT' && s !== 'SYN-RECEIVED');
  it.each(synced)('%s', (_state, make) => {
    const t = make();
    const before = t.state;
    const out = [...t.process({ ...SEND_TEMPL, seq: seqAdd(REMOTE_SEQ, WIN * 4), payload: bytes('x') }, T0), ...t.dispatch(T0)];
    expect(out.map((s) => formatFlags(s.flags))).toEqual(['ACK']);
    expect(out[0]!.ack).toBe(t.rcvNxt);
    expect(t.state).toBe(before);
  });
});

