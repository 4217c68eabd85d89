// What a stack sends frames through and hears frames from: a TUN device (host/tunlink.ts) or,
// in tests, the other end of a MemoryLink.
export interface Link {
  send(frame: Uint8Array): void;
  /**
   * Frames as they arrive. `more`: further frames of the same read follow at once (a TUN drains
   * its whole queue per wake-up), so the stack may answer the batch as a whole.
   */
  onFrame(listener: (frame: Uint8Array, timeUs: number, more?: boolean) => void): () => void;
}
