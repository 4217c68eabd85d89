/** Malformed bytes are a value, not an exception from deep inside a codec. */
export interface WireError {
  kind: 'error';
  layer: 'ipv4' | 'ipv6' | 'tcp' | 'udp' | 'icmp' | 'frame';
  reason: string;
}
export function wireError(layer: WireError['layer'], reason: string): WireError {
  return { kind: 'error', layer, reason };
}
export function isWireError(x: unknown): x is WireError {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'error';
}
