// What a stack sends frames through and hears frames from: a TUN device (host/tunlink.ts) or,
// in tests, the other end of a MemoryLink.
export interface Link {
  send(frame: Uint8Array): void;
  onFrame(listener: (frame: Uint8Array, timeUs: number) => void): () => void;
}
