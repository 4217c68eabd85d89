// What a TCB is configured with: the knobs Linux has as sysctls and socket options (MSS, window
// scale, timestamps, SACK, buffers, 2·MSL, delayed ACKs, retries, keep-alive, FIN-WAIT-2 timeout,
// RFC 1337, the challenge-ACK limit), with Linux's values as defaults where they matter to a lab.
import { DEFAULT_RTO, type RtoConfig } from './rto';

export interface KeepaliveConfig {
  /** idle time before the first probe (Linux tcp_keepalive_time: 7200 s) */
  idleMs: number;
  /** between unanswered probes (tcp_keepalive_intvl: 75 s) */
  intervalMs: number;
  /** unanswered probes before the connection is reset (tcp_keepalive_probes: 9) */
  probes: number;
}

export interface TcbConfig {
  /** MSS we announce and never exceed when sending; null: from the MTU (MTU − 40 on IPv4, − 60 on IPv6) */
  mss: number | null;
  /** the link's MTU, for the MSS when `mss` is null */
  mtu: number;
  /** window scale shift we offer in our SYN; null: no WS option (RFC 7323 §2) */
  wscale: number | null;
  /** offer timestamps in our SYN (RFC 7323 §3) */
  timestamps: boolean;
  /** PAWS on receive (RFC 7323 §5): reject segments with an older timestamp */
  paws: boolean;
  /** offer SACK-permitted (RFC 2018): we then send SACK blocks, and skip SACKed data when retransmitting */
  sackPermitted: boolean;
  /** receive buffer: the window we advertise when the application reads everything */
  rcvBuf: number;
  /** initial sequence number; absent: the stack's ISN clock (RFC 6528) */
  isn?: number;
  /** timestamp clock offset (TSval = now ms + offset); absent: the stack's, one per address pair */
  tsOffset?: number;
  /** maximum segment lifetime in ms; TIME-WAIT lasts 2·MSL (Linux: 60 s) */
  mslMs: number;
  /** delay ACKs (RFC 9293 §3.8.6.3): every second full segment or after delayedAckMs */
  delayedAck: boolean;
  delayedAckMs: number;
  /**
   * Segments that arrive in one batch (a TUN read that drained several frames) are acknowledged
   * together at the end of the batch, as Linux acknowledges a GRO super-packet, and mid-batch
   * once more than this many bytes (at most a quarter of the receive buffer) are unacknowledged.
   * 0: every second full-sized segment even within a batch (RFC 5681 §4.2, RFC 9293 SHLD-19).
   * Segments that arrive one at a time are acknowledged one by one either way.
   */
  ackCoalesce: number;
  rto: RtoConfig;
  /** retransmissions of a SYN / of data before giving up (Linux: tcp_syn_retries 6, tcp_retries2 15) */
  synRetries: number;
  dataRetries: number;
  /** initial congestion window in segments (RFC 6928) */
  initialCwnd: number;
  /** send a tail loss probe after ~2·SRTT of silence (RFC 8985 §7), as Linux does */
  tailLossProbe: boolean;
  /** ignore RSTs in TIME-WAIT (RFC 1337's fix; Linux: net.ipv4.tcp_rfc1337) */
  rfc1337: boolean;
  /** send keep-alives (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6); null: off, as a socket without SO_KEEPALIVE */
  keepalive: KeepaliveConfig | null;
  /** after close(), FIN-WAIT-2 ends after this long (Linux tcp_fin_timeout, 60 s); null: it waits for the FIN */
  finWait2TimeoutMs: number | null;
  /** challenge ACKs (RFC 5961 §7): at most `count` per `perMs` per connection (Linux: one per 500 ms); null: no limit */
  challengeAckLimit: { count: number; perMs: number } | null;
}

export const DEFAULT_TCB: TcbConfig = {
  mss: null,
  mtu: 1500,
  wscale: 7,
  timestamps: true,
  paws: true,
  sackPermitted: true,
  rcvBuf: 256 * 1024,
  mslMs: 30_000,
  delayedAck: false,
  delayedAckMs: 40,
  ackCoalesce: 65536,
  rto: DEFAULT_RTO,
  synRetries: 6,
  dataRetries: 15,
  initialCwnd: 10,
  tailLossProbe: true,
  rfc1337: false,
  keepalive: null,
  finWait2TimeoutMs: 60_000,
  challengeAckLimit: { count: 1, perMs: 500 },
};

/** What the TCB is given rather than choosing itself (the stack's ISN clock and timestamp offset, the address family). */
export interface TcbInit {
  iss?: number;
  tsOffset?: number;
  ipv6?: boolean;
}
