/**
 * permessage-deflate (RFC 7692) for Node: implements the protocol core's MessageCodec with
 * node:zlib raw deflate streams, one per direction, created lazily.
 */
import * as zlib from "node:zlib";
import { type CodecCallback, CodecLimitError, type MessageCodec } from "../protocol/codec.js";

/** The empty stored block every sync flush ends with (RFC 7692 §7.2.1). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** A sync flush with no input on a byte-aligned stream: an empty stored block. */
const EMPTY_BLOCK = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

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
  /** Output of the frame being compressed, and how to finish it (one frame at a time). */
  private outChunks: Buffer[] = [];
  private outLength = 0;
  private compressDone: ((error: Error | null) => void) | null = null;
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
    if (data.length === 0) {
      // Every write ends with a sync flush, and zlib will not repeat a sync flush without new
      // input (Z_BUF_ERROR, no output). Emit that flush's empty stored block ourselves: the stream
      // is byte-aligned after the previous flush, so it is exactly 00 00 00 ff ff.
      // Called back later, as for other frames, so a run of empty messages cannot nest deeply.
      queueMicrotask(() => {
        if (this.closed) return callback(new Error("codec closed"), null);
        if (fin && this.ownNoContext) this.deflater?.reset();
        callback(null, Buffer.from(fin ? EMPTY_BLOCK.subarray(0, 1) : EMPTY_BLOCK));
      });
      return;
    }
    const deflater = this.deflater ?? this.createDeflater();
    let done = false;
    const finish = (error: Error | null): void => {
      if (done) return;
      done = true;
      this.compressDone = null;
      // Output of this write that push() buffered instead of emitting is still in the readable
      // side when the write callback runs; take it now so it is not mistaken for the next frame's.
      if (error === null && !this.closed) this.drainDeflater(deflater);
      const chunks = this.outChunks;
      const length = this.outLength;
      this.outChunks = [];
      this.outLength = 0;
      if (this.closed) return callback(new Error("codec closed"), null);
      if (error !== null) {
        this.close();
        return callback(error, null);
      }
      let out = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
      if (fin) {
        if (out.length >= 4 && endsWithTail(out)) out = out.subarray(0, out.length - 4);
        if (this.ownNoContext) deflater.reset();
      }
      callback(null, out);
    };
    this.compressDone = finish;
    // One write (one thread-pool trip) per frame: the deflater's default flush is Z_SYNC_FLUSH.
    deflater.write(data, (error) => finish(error ?? null));
  }

  private createDeflater(): zlib.DeflateRaw {
    const bits =
      this.options.role === "server"
        ? this.options.serverMaxWindowBits
        : this.options.clientMaxWindowBits;
    const deflater = zlib.createDeflateRaw({
      // zlib cannot produce raw deflate with an 8-bit window; 9 is the smallest it supports.
      windowBits: Math.max(9, bits),
      level: this.options.level ?? 1,
      memLevel: this.options.memLevel ?? 8,
      flush: zlib.constants.Z_SYNC_FLUSH,
    });
    // Paused mode: output is taken with read(), on 'readable' (which also lets zlib continue once
    // its readable buffer is over the high-water mark) and when the write completes.
    deflater.on("readable", () => this.drainDeflater(deflater));
    // A zlib error destroys the stream without calling the write callback: report it here.
    deflater.on("error", (error: Error) => this.compressDone?.(error));
    this.deflater = deflater;
    return deflater;
  }

  private drainDeflater(deflater: zlib.DeflateRaw): void {
    if (deflater !== this.deflater) return;
    let chunk: Buffer | null = deflater.read();
    while (chunk !== null) {
      this.outChunks.push(chunk);
      this.outLength += chunk.length;
      chunk = deflater.read();
    }
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
