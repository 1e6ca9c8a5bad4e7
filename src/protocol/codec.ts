/**
 * The compression codec the protocol core drives for permessage-deflate (RFC 7692). The core
 * has no zlib: an I/O layer implements this interface (src/node/deflate-codec.ts does it with
 * node:zlib) for the parameters negotiated in the handshake.
 *
 * Callbacks may be called synchronously or later; the core keeps message order either way.
 */
export type CodecCallback = (error: Error | null, result: Uint8Array | null) => void;

export interface MessageCodec {
  /**
   * Compress the payload of one data frame. For the last frame of a message (`fin`) the output
   * ends with a sync flush whose final `00 00 ff ff` is removed (RFC 7692 §7.2.1), and the
   * compression context is reset when no context takeover applies to our direction.
   */
  compress(data: Uint8Array, fin: boolean, callback: CodecCallback): void;
  /**
   * Decompress the payload of one frame of a compressed message. For the last frame (`fin`) the
   * codec appends `00 00 ff ff` before inflating (RFC 7692 §7.2.2) and resets the context when no
   * context takeover applies to the peer's direction.
   *
   * `maxOutput` is how many bytes the message may still grow: once the output would exceed it
   * the codec stops inflating and calls back with a {@link CodecLimitError}, so a small bomb costs
   * bounded memory.
   */
  decompress(data: Uint8Array, fin: boolean, maxOutput: number, callback: CodecCallback): void;
  /** Release the codec's resources; later calls must not be made. */
  close(): void;
}

/** Reported by {@link MessageCodec.decompress} when the output exceeds `maxOutput`. */
export class CodecLimitError extends Error {
  constructor(maxOutput: number) {
    super(`decompressed message exceeds ${maxOutput} bytes`);
    this.name = "CodecLimitError";
  }
}
