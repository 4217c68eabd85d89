// The TCB per state, in the manner of smoltcp's tests: a TCB built *in* a state, segments from
// templates, and exactly the segments it must answer with — nothing more.
import { describe, expect, it } from 'vitest';
import { seq, seqAdd, type SeqNumber } from '../src/wire/seq';
import { emitTcpFrame } from '../src/wire/frame';
import { flags, formatFlags, type TcpOption, type TcpRepr } from '../src/wire/tcp';
import { Tcb, type TcbConfig } from '../src/stack/tcb';
import {
  bytes,
  CFG,
  expectSegments,
  FIXTURES,
  LOCAL_PORT,
  LOCAL_SEQ,
  PEER_TS,
  RECV_TEMPL,
  recv,
  REMOTE_PORT,
  REMOTE_SEQ,
  send,
  SEND_TEMPL,
  SYN_FROM_PEER,
  SYN_LINUX,
  T0,
  tcbEstablishedTsSack,
  ts,
  type Sent,
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
      {
        flags: 'SYN',
        seq: LOCAL_SEQ,
        ack: 0,
        window: WIN,
        opts: [
          { kind: 'mss', value: 1460 },
          { kind: 'sackPermitted' },
          { kind: 'timestamps', tsval: T0, tsecr: 0 },
          { kind: 'nop' },
          { kind: 'wscale', shift: 7 },
        ],
      },
    ]);
    expect(states(t)).toEqual(['CLOSED→SYN-SENT']);
    const frame = emitTcpFrame('192.0.2.2', '192.0.2.1', syn!);
    expect(frame[20 + 12]! >> 4).toBe(10); // data offset: 40 bytes, no EOL padding
    // without SACK: NOP NOP before the timestamps; without timestamps: NOP NOP before SACK-permitted
    recv(Tcb.connect({ ...CFG, timestamps: true, wscale: 7 }, LOCAL_PORT, REMOTE_PORT, T0), T0, [
      {
        flags: 'SYN',
        seq: LOCAL_SEQ,
        ack: 0,
        opts: [
          { kind: 'mss', value: 1460 },
          { kind: 'nop' },
          { kind: 'nop' },
          { kind: 'timestamps', tsval: T0, tsecr: 0 },
          { kind: 'nop' },
          { kind: 'wscale', shift: 7 },
        ],
      },
    ]);
    recv(Tcb.connect({ ...CFG, sackPermitted: true }, LOCAL_PORT, REMOTE_PORT, T0), T0, [
      {
        flags: 'SYN',
        seq: LOCAL_SEQ,
        ack: 0,
        opts: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'sackPermitted' }],
      },
    ]);
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
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 100), flags: flags('syn,ack') }, [
      { flags: 'RST', seq: seqAdd(LOCAL_SEQ, 100), ack: 0 },
    ]);
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
    const t = Tcb.accept(
      { ...CFG, timestamps: true, wscale: 7, sackPermitted: true },
      { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1400 }, { kind: 'nop' }, { kind: 'wscale', shift: 9 }] },
      T0,
    );
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
    send(t, T0 + 201, { ack: seqAdd(LOCAL_SEQ, 4), window: 100 }, [
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 4), payload: 'def' },
    ]);
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
    const t = tcbSynReceived(
      { sackPermitted: true },
      { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }] },
    );
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
    const t = tcbSynReceived(
      { timestamps: true, paws },
      {
        ...SYN_FROM_PEER,
        options: [
          { kind: 'mss', value: 1460 },
          { kind: 'timestamps', tsval: 5000, tsecr: 0 },
        ],
      },
    );
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
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
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
    send(t, T0, { ack: seqAdd(LOCAL_SEQ, 2), payload: bytes('late') }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 5) },
    ]);
    expect(t.state).toBe('FIN-WAIT-2');
  });
  it('the peer FIN: TIME-WAIT, an ACK, and a 2MSL timer', () => {
    const t = tcbFinWait2();
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
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
    send(t, T0 + 5000, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
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
    send(t, T0, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2) }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
    expect(t.timers.get('time-wait')).toBe(T0 + 2000);
  });
  it('an RST at RCV.NXT kills it (the RFC 1337 hazard)', () => {
    const t = tcbTimeWait();
    send(t, T0, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 2), ack: seq(0) });
    expect(t.state).toBe('CLOSED');
  });
  it('other segments are answered with an ACK', () => {
    const t = tcbTimeWait();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 1), ack: seqAdd(LOCAL_SEQ, 2), payload: bytes('old') }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
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

// ---------------------------------------------------------------- loss recovery and congestion control
// (recovery.ts, congestion.ts). mss 100, no timestamps: segment i is LOCAL_SEQ+1+100·i, 100 bytes.
const data = (i: number, n = 10): Sent => ({
  ...RECV_TEMPL,
  flags: i === n - 1 ? 'PSH,ACK' : 'ACK',
  seq: seqAdd(LOCAL_SEQ, 1 + 100 * i),
  len: 100,
});
const ackOf = (i: number): Partial<TcpRepr> => ({ ack: seqAdd(LOCAL_SEQ, 1 + 100 * i) });
const sackOf = (from: number, to: number): TcpOption[] => [
  { kind: 'nop' },
  { kind: 'nop' },
  { kind: 'sack', blocks: [[seqAdd(LOCAL_SEQ, 1 + 100 * from), seqAdd(LOCAL_SEQ, 1 + 100 * to)]] },
];
function tcbSack(cfg: Partial<TcbConfig> = {}): Tcb {
  const t = tcbSynReceived(
    { sackPermitted: true, mss: 100, ...cfg },
    { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }] },
  );
  send(t, T0, {});
  return t;
}

describe('loss recovery and congestion control', () => {
  it('after an RTO the window restarts at one segment and slow start grows it per ACK, resending from SND.UNA (RFC 5681 §3.1)', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(1000));
    recv(
      t,
      T0,
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => data(i)),
    );
    recv(t, T0 + 200, [data(0)]); // the RTO (200 ms: the handshake measured an RTT of 0)
    expect([t.cc.cwnd, t.cc.ssthresh]).toEqual([100, 500]);
    send(t, T0 + 201, ackOf(1), [data(1), data(2)]); // cwnd 200
    send(t, T0 + 202, ackOf(2), [data(3), data(4)]); // cwnd 300
    send(t, T0 + 203, ackOf(3), [data(5), data(6)]); // cwnd 400
    send(t, T0 + 204, ackOf(4), [data(7), data(8)]); // cwnd 500 = ssthresh: congestion avoidance from here
    send(t, T0 + 205, ackOf(5), [data(9)]);
    expect(t.cc.cwnd).toBe(500);
    send(t, T0 + 206, ackOf(10), []);
    expect(t.recovery.phase).toBe('open');
  });

  it('an RTO forgets the SACK scoreboard: data SACKed before it is resent, the receiver may have reneged (RFC 2018 §8, RFC 6675 §5.1)', () => {
    const t = tcbSack();
    t.write(new Uint8Array(500));
    recv(
      t,
      T0,
      [0, 1, 2, 3, 4].map((i) => data(i, 5)),
    );
    send(t, T0 + 1, { ...ackOf(0), options: sackOf(2, 4) }, []); // one duplicate ACK SACKing segments 2–3: no fast retransmit yet
    expect(t.recovery.scoreboard.ranges).toEqual([[seqAdd(LOCAL_SEQ, 201), seqAdd(LOCAL_SEQ, 401)]]);
    recv(t, T0 + 200, [data(0, 5)]);
    expect(t.recovery.scoreboard.ranges).toEqual([]);
    send(t, T0 + 201, ackOf(1), [data(1, 5), data(2, 5)]);
  });

  it('a SACK block beyond SND.NXT reports data never sent and is ignored (RFC 2018, RFC 6675 §5)', () => {
    const t = tcbSack();
    t.write(new Uint8Array(300));
    recv(
      t,
      T0,
      [0, 1, 2].map((i) => data(i, 3)),
    );
    send(t, T0 + 1, { ...ackOf(0), options: sackOf(4, 7) }, []);
    expect(t.recovery.scoreboard.ranges).toEqual([]);
    expect(t.recovery.phase).toBe('open');
  });

  it('with SACK: limited transmit, fast retransmit of the one hole, new data only as pipe falls below cwnd, no burst at the end (RFC 3042, RFC 6675, RFC 6582 §3.2)', () => {
    const t = tcbSack();
    t.write(new Uint8Array(1500));
    const d = (i: number): Sent => data(i, 15);
    recv(t, T0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(d));
    // the first two duplicate ACKs each report one segment gone from the network: one new segment each
    send(t, T0 + 1, { ...ackOf(0), options: sackOf(1, 2) }, [d(10)]);
    send(t, T0 + 2, { ...ackOf(0), options: sackOf(1, 3) }, [d(11)]);
    // three segments SACKed above SND.UNA: segment 0 is lost (RFC 6675 IsLost); cwnd = ssthresh = FlightSize/2
    send(t, T0 + 3, { ...ackOf(0), options: sackOf(1, 4) }, [d(0)]);
    expect([t.recovery.phase, t.cc.cwnd, t.cc.ssthresh]).toEqual(['fast-recovery', 600, 600]);
    // pipe = 12 sent − 3 SACKed + 0 lost unretransmitted = 9 segments: nothing until it falls below cwnd
    send(t, T0 + 4, { ...ackOf(0), options: sackOf(1, 5) }, []);
    send(t, T0 + 5, { ...ackOf(0), options: sackOf(1, 6) }, []);
    send(t, T0 + 6, { ...ackOf(0), options: sackOf(1, 7) }, []);
    send(t, T0 + 7, { ...ackOf(0), options: sackOf(1, 8) }, [d(12)]);
    // the retransmission arrives: out of recovery with cwnd = min(ssthresh, FlightSize + SMSS), not a burst
    send(t, T0 + 8, ackOf(12), [d(13)]);
    expect([t.recovery.phase, t.cc.cwnd]).toEqual(['open', 200]);
    send(t, T0 + 9, ackOf(13), [d(14)]);
  });

  it('ACKs and RSTs carry SND.NXT, not the retransmission point, after an RTO (spurious or not)', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(300));
    recv(
      t,
      T0,
      [0, 1, 2].map((i) => data(i, 3)),
    );
    recv(t, T0 + 200, [data(0, 3)]);
    // the peer's data, acknowledging nothing new: our ACK is at SND.NXT, the highest sequence number sent
    send(t, T0 + 201, { payload: bytes('x') }, [{ ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 301), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.sndNxt).toBe(seqAdd(LOCAL_SEQ, 301));
    expectSegments(t.abort(T0 + 202), [{ flags: 'RST,ACK', seq: seqAdd(LOCAL_SEQ, 301), ack: seqAdd(REMOTE_SEQ, 2) }]);
  });

  it('a spurious RTO: the late ACK of the whole flight ends the loss phase, nothing more is resent', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(300));
    recv(
      t,
      T0,
      [0, 1, 2].map((i) => data(i, 3)),
    );
    recv(t, T0 + 200, [data(0, 3)]);
    send(t, T0 + 210, ackOf(3), []);
    expect([t.recovery.phase, t.sndUna, t.timers.has('retransmit')]).toEqual(['open', seqAdd(LOCAL_SEQ, 301), false]);
  });

  it('Karn: an ACK of retransmitted data without timestamps gives no RTT sample, so the backed-off RTO stays (RFC 6298 §5)', () => {
    const t = tcbEstablished();
    t.write(bytes('data'));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'data' }]);
    recv(t, T0 + 200, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'data' }]);
    send(t, T0 + 250, { ack: seqAdd(LOCAL_SEQ, 5) }, []); // ambiguous: the original or the retransmission?
    expect(t.rto.rtoMs).toBe(400);
    t.write(bytes('more'));
    recv(t, T0 + 250, [{ ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 5), payload: 'more' }]);
    recv(t, T0 + 649, []);
    recv(t, T0 + 650, [{ ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 5), payload: 'more' }]);
  });

  it("a window shrunk to zero under data in flight is probed with SND.UNA's segment on each RTO, and the connection lives while the peer answers (RFC 9293 §3.8.6.1)", () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(300));
    recv(
      t,
      T0,
      [0, 1, 2].map((i) => data(i, 3)),
    );
    send(t, T0 + 10, { ...ackOf(1), window: 0 }, []); // the peer took one segment and shut its window
    let now = T0 + 10;
    for (let probe = 0; probe < 20; probe++) {
      now = t.nextDeadline()!;
      recv(t, now, [data(1, 3)]);
      send(t, now + 1, { ...ackOf(1), window: 0 }, []); // still shut
    }
    expect(t.state).toBe('ESTABLISHED');
    expect(t.retries).toBe(0);
    // the window opens: what was probed into it goes again, then slow start
    send(t, now + 2, { ...ackOf(1), window: 1000 }, [data(1, 3)]);
    send(t, now + 3, ackOf(2), [data(2, 3)]);
  });

  it('without SACK, three duplicate ACKs retransmit once and each partial ACK resends the next hole at once (RFC 6582)', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(600));
    recv(
      t,
      T0,
      [0, 1, 2, 3, 4, 5].map((i) => data(i, 6)),
    );
    send(t, T0 + 1, ackOf(0), []);
    send(t, T0 + 2, ackOf(0), []);
    send(t, T0 + 3, ackOf(0), [data(0, 6)]);
    send(t, T0 + 4, ackOf(2), [data(2, 6)]); // partial: segment 2 was lost too
    send(t, T0 + 5, ackOf(6), []);
    expect(t.recovery.phase).toBe('open');
  });
});

// ---------------------------------------------------------------- silly window syndrome (RFC 9293 §3.8.6.2)
describe('silly window syndrome avoidance', () => {
  it('sender: a window smaller than a segment, with more queued, waits for the override timeout (MUST-38)', () => {
    const t = tcbEstablished();
    send(t, T0, { window: 100 });
    t.write(new Uint8Array(5000));
    recv(t, T0, []);
    recv(t, T0 + 199, []);
    recv(t, T0 + 200, [{ ...RECV_TEMPL, len: 100 }]);
  });
  it('sender: all that is queued goes at once even when small', () => {
    const t = tcbEstablished();
    send(t, T0, { window: 100 });
    t.write(bytes('tiny'));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'tiny' }]);
  });
  it('receiver: the right edge moves only by min(RCV.BUFF/2, MSS) or more (MUST-39); a big enough read sends a window update', () => {
    const t = tcbEstablished({ rcvBuf: 10_000 });
    send(t, T0, { payload: new Uint8Array(9000) }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 9001), window: 1000 }]);
    expect(t.read(1000).length).toBe(1000); // 2000 free now, but 1000 more than advertised is less than a segment
    recv(t, T0, []);
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 9001), payload: new Uint8Array(100) }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 9101), window: 900 },
    ]);
    expect(t.read(2000).length).toBe(2000); // 3900 free: the edge moves, and the window at least doubles: tell the sender
    recv(t, T0, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 9101), window: 3900 }]);
  });
});

// ---------------------------------------------------------------- MSS
describe('MSS', () => {
  it('options come out of the MSS: with timestamps and a SACK block a segment carries 1460 − 12 − 12 bytes (RFC 9293 §3.7.1 MUST-16)', () => {
    const t = tcbEstablishedTsSack();
    // out-of-order data from the peer: our segments now carry a SACK block
    send(t, T0 + 1, { seq: seqAdd(REMOTE_SEQ, 11), options: ts(PEER_TS + 2, T0), payload: bytes('later') }, [
      {
        ...RECV_TEMPL,
        opts: [
          ...ts(T0 + 1, PEER_TS + 1),
          { kind: 'nop' },
          { kind: 'nop' },
          { kind: 'sack', blocks: [[seqAdd(REMOTE_SEQ, 11), seqAdd(REMOTE_SEQ, 16)]] },
        ],
      },
    ]);
    t.write(new Uint8Array(3000));
    const out = recv(t, T0 + 2, [
      { ...RECV_TEMPL, len: 1436 },
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 1437), len: 1436 },
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 2873), len: 128 },
    ]);
    expect(emitTcpFrame('192.0.2.1', '192.0.2.2', out[0]!).length).toBe(1500); // not 1512
  });
  it('IPv6: we announce 1440 and assume 1220 when the peer announces none (MUST-15)', () => {
    const t = Tcb.connect(CFG, LOCAL_PORT, REMOTE_PORT, T0, { ipv6: true });
    recv(t, T0, [{ flags: 'SYN', seq: LOCAL_SEQ, ack: 0, opts: [{ kind: 'mss', value: 1440 }] }]);
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 1), flags: flags('syn,ack'), options: [] }, [RECV_TEMPL]);
    expect(t.peerMss).toBe(1220);
    t.write(new Uint8Array(3000));
    recv(t, T0, [
      { ...RECV_TEMPL, len: 1220 },
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 1221), len: 1220 },
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 2441), len: 560 },
    ]);
  });
  it('IPv4: 536 when the peer announces none', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 1), flags: flags('syn,ack'), options: [] }, [RECV_TEMPL]);
    t.write(new Uint8Array(600));
    recv(t, T0, [
      { ...RECV_TEMPL, len: 536 },
      { ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 537), len: 64 },
    ]);
  });
});

// ---------------------------------------------------------------- timestamps (RFC 7323)
describe('timestamps', () => {
  it('TS.Recent never goes back: an older TSval (PAWS off) is taken as data but not as TS.Recent (RFC 7323 §4.3)', () => {
    const t = tcbEstablishedTsSack({ paws: false });
    send(t, T0 + 1, { options: ts(PEER_TS - 100, T0), payload: bytes('a') }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2), opts: ts(T0 + 1, PEER_TS + 1) },
    ]);
    expect(t.tsRecent).toBe(PEER_TS + 1);
  });
  it('TS.Recent moves only once the segment passed the ACK check: a challenge-ACKed one leaves it', () => {
    const t = tcbEstablishedTsSack();
    send(t, T0 + 1, { options: ts(PEER_TS + 50, T0), ack: seqAdd(LOCAL_SEQ, 500), payload: bytes('zz') }, [
      { ...RECV_TEMPL, opts: ts(T0 + 1, PEER_TS + 1) },
    ]);
    expect(t.tsRecent).toBe(PEER_TS + 1);
    send(t, T0 + 2, { options: ts(PEER_TS + 60, T0), payload: bytes('ok') }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 3), opts: ts(T0 + 2, PEER_TS + 60) },
    ]);
  });
  it('TIME-WAIT takes a new incarnation by timestamp: newer, or equal with a higher sequence number (RFC 6191 §2)', () => {
    const t = tcbEstablishedTsSack();
    t.shutdown(T0);
    t.dispatch(T0);
    send(t, T0 + 1, { flags: flags('fin,ack'), ack: seqAdd(LOCAL_SEQ, 2), options: ts(PEER_TS + 5, T0) }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 2), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
    expect([t.state, t.tsRecent]).toEqual(['TIME-WAIT', PEER_TS + 5]);
    const syn = (seqNo: SeqNumber, tsval: number): TcpRepr => ({
      ...SYN_LINUX,
      seq: seqNo,
      options: [{ kind: 'timestamps', tsval, tsecr: 0 }],
    });
    const above = seqAdd(t.rcvNxt, 1000);
    const below = seqAdd(t.rcvNxt, -1000);
    expect(t.acceptsNewIncarnation(syn(below, PEER_TS + 6), true)).toBe(true);
    expect(t.acceptsNewIncarnation(syn(above, PEER_TS + 5), true)).toBe(true);
    expect(t.acceptsNewIncarnation(syn(below, PEER_TS + 5), true)).toBe(false);
    expect(t.acceptsNewIncarnation(syn(above, PEER_TS + 4), true)).toBe(false);
    expect(t.acceptsNewIncarnation(syn(above, PEER_TS + 4), false)).toBe(true); // the new one would not use timestamps: sequence numbers decide
  });
});

// ---------------------------------------------------------------- what arrives where it is not expected
describe('segments with more in them', () => {
  it('SYN-SENT: a SYN,ACK with text and FIN — the text is taken, the FIN too: ESTABLISHED → CLOSE-WAIT (RFC 9293 §3.10.7.3)', () => {
    const t = tcbSynSent();
    send(t, T0, { seq: REMOTE_SEQ, ack: seqAdd(LOCAL_SEQ, 1), flags: flags('syn,ack,fin'), payload: bytes('hello') }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7), window: WIN - 6 },
    ]);
    expect(states(t)).toEqual(['CLOSED→SYN-SENT', 'SYN-SENT→ESTABLISHED', 'ESTABLISHED→CLOSE-WAIT']);
    expect(new TextDecoder().decode(t.read())).toBe('hello');
  });
  it('a FIN on an out-of-order segment is kept: when the hole is filled, the data and then the FIN (CLOSE-WAIT)', () => {
    const t = tcbEstablished();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 4), flags: flags('fin,ack'), payload: bytes('def') }, [RECV_TEMPL]);
    expect(t.state).toBe('ESTABLISHED');
    send(t, T0 + 1, { payload: bytes('abc') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 8), window: WIN - 7 }]);
    expect(t.state).toBe('CLOSE-WAIT');
    expect(new TextDecoder().decode(t.read())).toBe('abcdef');
  });
  it('a segment that fills a hole is ACKed at once, delayed ACKs or not (RFC 5681 §4.2)', () => {
    const t = tcbEstablished({ delayedAck: true });
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 4), payload: bytes('def') }, [RECV_TEMPL]);
    send(t, T0 + 1, { payload: bytes('abc') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7) }]);
  });
  it('the same out-of-order data twice is held once, and overlapping data merges into one SACK block', () => {
    const t = tcbSynReceived(
      { sackPermitted: true },
      { ...SYN_FROM_PEER, options: [{ kind: 'mss', value: 1460 }, { kind: 'sackPermitted' }] },
    );
    send(t, T0, {});
    const sack = (l: number, r: number): Sent => ({
      ...RECV_TEMPL,
      opts: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[seqAdd(REMOTE_SEQ, l), seqAdd(REMOTE_SEQ, r)]] }],
    });
    for (let i = 0; i < 3; i++) send(t, T0, { seq: seqAdd(REMOTE_SEQ, 4), payload: bytes('def') }, [sack(4, 7)]);
    expect([t.ooo.bytes, t.ooo.pieces.length]).toEqual([3, 1]);
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 3), payload: bytes('cdefg') }, [sack(3, 8)]);
    expect(t.ooo.bytes).toBe(5);
    send(t, T0, { payload: bytes('ab') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 8) }]);
    expect(new TextDecoder().decode(t.read())).toBe('abcdefg');
  });
  it('duplicates held once show in the window: a read that frees the buffer announces what is really free', () => {
    const t = tcbEstablished({ rcvBuf: 1000 });
    send(t, T0, { payload: new Uint8Array(900) }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 901), window: 100 }]);
    for (let i = 0; i < 3; i++)
      send(t, T0, { seq: seqAdd(REMOTE_SEQ, 951), payload: new Uint8Array(50) }, [
        { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 901), window: 100 },
      ]);
    expect(t.read().length).toBe(900);
    recv(t, T0, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 901), window: 950 }]); // 1000 − the 50 held once, not three times
  });
  it('urgent data is parsed and shown: RCV.UP moves to the byte after it, an event says so (RFC 9293 §3.10.7.4 sixth, RFC 6093)', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('urg,psh,ack'), urgent: 3, payload: bytes('abcdef') }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7), window: WIN - 6 },
    ]);
    expect(t.rcvUp).toBe(seqAdd(REMOTE_SEQ, 4));
    expect(t.events.filter((e) => e.kind === 'urgent')).toEqual([{ kind: 'urgent', pointer: seqAdd(REMOTE_SEQ, 4), at: T0 }]);
  });
});

// ---------------------------------------------------------------- scripting hooks
describe('held ACKs', () => {
  it('an ACK held back is owed, not forgotten: released, it goes at once even with delayed ACKs', () => {
    const t = tcbEstablished({ delayedAck: true });
    t.holdAcks = true;
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, WIN + 100), payload: bytes('far') }, []); // out of the window: it draws an ACK, held
    expect(t.lastAckSent).toBe(seqAdd(REMOTE_SEQ, 1));
    t.holdAcks = false;
    recv(t, T0, [RECV_TEMPL]);
  });
});

// ---------------------------------------------------------------- peer behaviours a lab can script
describe('keep-alive, FIN-WAIT-2 timeout, close() with unread data, challenge-ACK limit', () => {
  it('keep-alive: <SEQ=SND.NXT−1> after the idle time, every interval while unanswered, then RST (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)', () => {
    const t = tcbEstablished({ keepalive: { idleMs: 1000, intervalMs: 100, probes: 2 } });
    const probe: Sent = { ...RECV_TEMPL, seq: LOCAL_SEQ };
    recv(t, T0 + 999, []);
    recv(t, T0 + 1000, [probe]);
    send(t, T0 + 1050, {}, []); // answered: idle again from here
    recv(t, T0 + 2049, []);
    recv(t, T0 + 2050, [probe]);
    recv(t, T0 + 2150, [probe]);
    recv(t, T0 + 2250, [{ flags: 'RST,ACK', seq: seqAdd(LOCAL_SEQ, 1), ack: seqAdd(REMOTE_SEQ, 1) }]);
    expect(t.state).toBe('CLOSED');
    expect(t.events.filter((e) => e.kind === 'keepalive').length).toBe(3);
    expect(t.events.some((e) => e.kind === 'reset' && e.reason === 'keepalive-timeout')).toBe(true);
  });
  it('FIN-WAIT-2 after close() ends after finWait2TimeoutMs, silently (Linux tcp_fin_timeout); after shutdown() it waits', () => {
    const t = tcbEstablished({ finWait2TimeoutMs: 5000 });
    t.close(T0);
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'FIN,ACK' }]);
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 2) }, []);
    expect(t.state).toBe('FIN-WAIT-2');
    recv(t, T0 + 5000, []);
    expect(t.state).toBe('FIN-WAIT-2');
    recv(t, T0 + 5001, []);
    expect(t.state).toBe('CLOSED');
    expect(t.events.some((e) => e.kind === 'reset' && e.reason === 'fin-wait-2-timeout')).toBe(true);
    const half = tcbFinWait2({ finWait2TimeoutMs: 5000 });
    expect([half.state, half.timers.has('fin-wait-2')]).toEqual(['FIN-WAIT-2', false]);
  });
  it('close() with unread data resets the connection: RST,ACK <SEQ=SND.NXT> (RFC 1122 §4.2.2.13, as Linux does)', () => {
    const t = tcbEstablished();
    send(t, T0, { payload: bytes('unread') }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 7), window: WIN - 6 }]);
    expectSegments(t.close(T0), [{ flags: 'RST,ACK', seq: seqAdd(LOCAL_SEQ, 1), ack: seqAdd(REMOTE_SEQ, 7) }]);
    expect(t.state).toBe('CLOSED');
  });
  it('data arriving after close() draws <SEQ=SEG.ACK><CTL=RST> and ends the connection', () => {
    const t = tcbEstablished();
    t.close(T0);
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'FIN,ACK' }]);
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 2), payload: bytes('late') }, [{ flags: 'RST', seq: seqAdd(LOCAL_SEQ, 2), ack: 0 }]);
    expect(t.state).toBe('CLOSED');
  });
  it('challenge ACKs are limited to one per 500 ms per connection by default (RFC 5961 §7, as Linux)', () => {
    const t = tcbEstablished();
    send(t, T0, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 100) }, [RECV_TEMPL]);
    send(t, T0 + 100, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 101) }, []);
    send(t, T0 + 200, { flags: flags('syn'), seq: seqAdd(REMOTE_SEQ, 77), ack: seq(0) }, []);
    send(t, T0 + 300, { ack: seqAdd(LOCAL_SEQ, 900) }, []);
    send(t, T0 + 500, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 102) }, [RECV_TEMPL]);
    expect(
      t.events.filter((e) => e.kind === 'challenge-ack-limited').map((e) => (e.kind === 'challenge-ack-limited' ? e.reason : '')),
    ).toEqual(['rst', 'syn', 'ack']);
    const unlimited = tcbEstablished({ challengeAckLimit: null });
    for (let i = 0; i < 5; i++) send(unlimited, T0 + i, { flags: flags('rst'), seq: seqAdd(REMOTE_SEQ, 100 + i) }, [RECV_TEMPL]);
  });
});

// ---------------------------------------------------------------- the peer must not bend the evidence (issue 16)
describe('closing with data queued, a FIN into a shut window, an old ACK', () => {
  it('close() with data queued behind a shut window: FIN-WAIT-1 at once; a crossing FIN then means CLOSING, and the ACK of ours TIME-WAIT (RFC 9293 §3.10.4, as Linux)', () => {
    const t = tcbEstablished({ mss: 100 });
    send(t, T0, { window: 0 }, []); // the peer's window is shut
    t.write(new Uint8Array(150));
    t.close(T0);
    expect(t.state).toBe('FIN-WAIT-1'); // not ESTABLISHED until the queue drains
    recv(t, T0, []); // nothing may go: data and FIN wait
    // the peer's FIN crosses ours (which is not even sent): CLOSING, and an ACK of it
    send(t, T0 + 1, { flags: flags('fin,ack'), window: 0 }, [{ ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('CLOSING');
    // the window opens: the data, the FIN after it
    send(t, T0 + 2, { seq: seqAdd(REMOTE_SEQ, 2), window: 1000 }, [
      { ...RECV_TEMPL, ack: seqAdd(REMOTE_SEQ, 2), len: 100 },
      { ...RECV_TEMPL, flags: 'FIN,PSH,ACK', seq: seqAdd(LOCAL_SEQ, 101), ack: seqAdd(REMOTE_SEQ, 2), len: 50 },
    ]);
    expect(t.finSeq).toBe(seqAdd(LOCAL_SEQ, 151));
    send(t, T0 + 3, { seq: seqAdd(REMOTE_SEQ, 2), ack: seqAdd(LOCAL_SEQ, 152), window: 1000 }, []);
    expect(states(t).slice(2)).toEqual(['ESTABLISHED→FIN-WAIT-1', 'FIN-WAIT-1→CLOSING', 'CLOSING→TIME-WAIT']);
  });
  it('end() in CLOSE-WAIT with data queued: LAST-ACK at once; an ABORT before the FIN went still resets (Linux tcp_disconnect)', () => {
    const t = tcbCloseWait();
    send(t, T0, { seq: seqAdd(REMOTE_SEQ, 2), window: 0 }, []);
    t.write(bytes('reply'));
    t.shutdown(T0);
    expect(t.state).toBe('LAST-ACK');
    recv(t, T0, []);
    expectSegments(t.abort(T0 + 1), [{ flags: 'RST,ACK', seq: seqAdd(LOCAL_SEQ, 1), ack: seqAdd(REMOTE_SEQ, 2) }]);
    expect(t.state).toBe('CLOSED');
  });
  it('close() in SYN-RECEIVED with data queued: FIN-WAIT-1 as soon as the handshake completes, before the FIN can go', () => {
    const t = tcbSynReceived();
    t.write(bytes('early'));
    t.close(T0);
    expect(t.state).toBe('SYN-RECEIVED');
    send(t, T0, { window: 0 }, []);
    expect(states(t)).toEqual(['LISTEN→SYN-RECEIVED', 'SYN-RECEIVED→ESTABLISHED', 'ESTABLISHED→FIN-WAIT-1']);
  });
  it('a FIN sent into a shut window and not taken goes again the moment the window reopens, not after the RTO', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(bytes('abc'));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', payload: 'abc' }]);
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 4), window: 0 }, []); // all taken, the window shut
    t.shutdown(T0 + 1);
    const fin: Sent = { ...RECV_TEMPL, flags: 'FIN,ACK', seq: seqAdd(LOCAL_SEQ, 4) };
    recv(t, T0 + 1, [fin]); // a FIN needs no window to go (RFC 9293)…
    send(t, T0 + 2, { ack: seqAdd(LOCAL_SEQ, 4), window: 0 }, []); // …but Linux before 6.10 drops it and says so
    expect(t.timers.get('retransmit')).toBeGreaterThan(T0 + 100);
    send(t, T0 + 50, { ack: seqAdd(LOCAL_SEQ, 4), window: 1000 }, [fin]); // the window update: the FIN again, at once
    expect(t.events.filter((e) => e.kind === 'retransmit').map((e) => (e.kind === 'retransmit' ? [e.seq, e.bytes, e.timer] : []))).toEqual([
      [seqAdd(LOCAL_SEQ, 4), 1, false],
    ]);
    send(t, T0 + 51, { ack: seqAdd(LOCAL_SEQ, 5), window: 1000 }, []);
    expect(t.state).toBe('FIN-WAIT-2');
  });
  it('a window update that also acknowledges the FIN (Linux ≥ 6.10 took it) sends nothing more', () => {
    const t = tcbEstablished({ mss: 100 });
    send(t, T0, { window: 0 }, []);
    t.shutdown(T0);
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'FIN,ACK' }]);
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 2), window: 1000 }, []);
    expect(t.state).toBe('FIN-WAIT-2');
  });
  it('an old ACK (SEG.ACK < SND.UNA) with a newer SEQ does not touch SND.WND; its text is still taken (RFC 9293 §3.10.7.4)', () => {
    const t = tcbEstablished({ mss: 100 });
    t.write(new Uint8Array(100));
    recv(t, T0, [{ ...RECV_TEMPL, flags: 'PSH,ACK', len: 100 }]);
    // the peer acknowledges it all, with a byte of its own: SND.WL1 = its SEQ
    send(t, T0 + 1, { ack: seqAdd(LOCAL_SEQ, 101), payload: bytes('a') }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 101), ack: seqAdd(REMOTE_SEQ, 2) },
    ]);
    // an older segment (an old duplicate, say) with a newer SEQ, an ACK below SND.UNA and a shut window
    send(t, T0 + 2, { seq: seqAdd(REMOTE_SEQ, 2), ack: seqAdd(LOCAL_SEQ, 1), window: 0, payload: bytes('b') }, [
      { ...RECV_TEMPL, seq: seqAdd(LOCAL_SEQ, 101), ack: seqAdd(REMOTE_SEQ, 3) },
    ]);
    expect(t.sndWnd).toBe(WIN);
    t.write(bytes('more'));
    recv(t, T0 + 3, [{ ...RECV_TEMPL, flags: 'PSH,ACK', seq: seqAdd(LOCAL_SEQ, 101), ack: seqAdd(REMOTE_SEQ, 3), payload: 'more' }]);
    // a bare old ACK at RCV.NXT likewise
    send(t, T0 + 4, { seq: seqAdd(REMOTE_SEQ, 3), ack: seqAdd(LOCAL_SEQ, 50), window: 0 }, []);
    expect(t.sndWnd).toBe(WIN);
  });
});
