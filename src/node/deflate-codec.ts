/**
 * permessage-deflate (RFC 7692) for Node: implements the protocol core's MessageCodec with
 * node:zlib raw deflate streams, one per direction, created lazily.
 */
import * as zlib from "node:zlib";
import { type CodecCallback, CodecLimitError, type MessageCodec } from "../protocol/codec.js";

/** The empty stored block every sync flush ends with (RFC 7692 §7.2.1). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface DeflateCodecOptions {
  readonly role: "server" | "client";
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  /** zlib compression level. @default 1 (fast; messages are small) */
  readonly level?: number;
  /** zlib memLevel. @default 8 */
  readonly memLevel?: number;
}

export class DeflateCodec implements MessageCodec {
  private readonly options: DeflateCodecOptions;
  private deflater: zlib.DeflateRaw | null = null;
  private inflater: zlib.InflateRaw | null = null;
  private closed = false;

  constructor(options: DeflateCodecOptions) {
    this.options = options;
  }

  private get ownNoContext(): boolean {
    return this.options.role === "server"
      ? this.options.serverNoContextTakeover
      : this.options.clientNoContextTakeover;
  }

  private get peerNoContext(): boolean {
    return this.options.role === "server"
      ? this.options.clientNoContextTakeover
      : this.options.serverNoContextTakeover;
  }

  compress(data: Uint8Array, fin: boolean, callback: CodecCallback): void {
    if (this.closed) return callback(new Error("codec closed"), null);
    if (this.deflater === null) {
      const bits =
        this.options.role === "server"
          ? this.options.serverMaxWindowBits
          : this.options.clientMaxWindowBits;
      this.deflater = zlib.createDeflateRaw({
        // zlib cannot produce raw deflate with an 8-bit window; 9 is the smallest it supports.
        windowBits: Math.max(9, bits),
        level: this.options.level ?? 1,
        memLevel: this.options.memLevel ?? 8,
      });
      this.deflater.on("error", ignore);
    }
    const deflater = this.deflater;
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
    };
    deflater.on("data", onData);
    deflater.write(data);
    deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      deflater.off("data", onData);
      if (this.closed) return callback(new Error("codec closed"), null);
      let out = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
      if (fin) {
        if (out.length >= 4 && endsWithTail(out)) out = out.subarray(0, out.length - 4);
        if (this.ownNoContext) deflater.reset();
      }
      callback(null, out);
    });
  }

  decompress(data: Uint8Array, fin: boolean, maxOutput: number, callback: CodecCallback): void {
    if (this.closed) return callback(new Error("codec closed"), null);
    if (this.inflater === null) {
      const bits =
        this.options.role === "server"
          ? this.options.clientMaxWindowBits
          : this.options.serverMaxWindowBits;
      this.inflater = zlib.createInflateRaw({
        windowBits: bits,
        flush: zlib.constants.Z_SYNC_FLUSH,
      });
      // Errors are reported per call below; this keeps a late one from becoming uncaught.
      this.inflater.on("error", ignore);
    }
    const inflater = this.inflater;
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (error: Error | null): void => {
      if (done) return;
      done = true;
      inflater.off("data", onData);
      inflater.off("error", finish);
      if (error !== null) {
        // Stop at once: the rest of a bomb is never produced, and the codec is unusable now.
        this.close();
        return callback(error, null);
      }
      if (this.closed) return callback(new Error("codec closed"), null);
      if (fin && this.peerNoContext) inflater.reset();
      callback(null, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length));
    };
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > maxOutput) return finish(new CodecLimitError(maxOutput));
      chunks.push(chunk);
    };
    inflater.on("data", onData);
    inflater.on("error", finish);
    // One write (one thread-pool trip) per frame; the last frame carries the 00 00 ff ff tail.
    inflater.write(fin ? Buffer.concat([data, TAIL]) : data, () => finish(null));
  }

  close(): void {
    this.closed = true;
    this.deflater?.close();
    this.inflater?.close();
    this.deflater = null;
    this.inflater = null;
  }
}

function endsWithTail(b: Buffer): boolean {
  const n = b.length;
  return b[n - 4] === 0x00 && b[n - 3] === 0x00 && b[n - 2] === 0xff && b[n - 1] === 0xff;
}

function ignore(): void {}
