// What a stack sends frames through and hears frames from: a TUN device (host/tunlink.ts) or,
// in tests, the other end of a MemoryLink.
export interface Link {
  send(frame: Uint8Array): void;
  /**
   * Frames as they arrive. `more`: further frames of the same read follow at once (a TUN drains
   * its whole queue per wake-up), so the stack may answer the batch as a whole.
   */
  onFrame(listener: (frame: Uint8Array, timeUs: number, more?: boolean) => void): () => void;
  /**
   * Delivers at once the frames that have already arrived, if the link can tell. The stack calls
   * it before acting on a timer: after this process was not scheduled for a while, the ACKs that
   * came meanwhile must count before a retransmission timer decides anything (a kernel takes
   * segments as they arrive, whatever its timers say).
   */
  poll?(): void;
}
