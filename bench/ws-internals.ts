/**
 * Typed access to the internals of `ws` 8.x that the benchmarks drive directly: the frame
 * Receiver (a Writable), the Sender and PerMessageDeflate. `ws`'s package "exports" map hides
 * `ws/lib/*`, and @types/ws does not describe these classes, so they are taken from the CommonJS
 * entry point (which attaches them to the WebSocket class) and typed here with only what we call.
 */
import { createRequire } from "node:module";

export interface WsReceiverOptions {
  readonly isServer: boolean;
  readonly maxPayload?: number;
  readonly skipUTF8Validation?: boolean;
  readonly binaryType?: "nodebuffer";
  readonly extensions?: Record<string, unknown>;
}

/** `ws/lib/receiver.js`: a Writable that parses frames and emits "message". */
export interface WsReceiver {
  write(chunk: Buffer): boolean;
  on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
}

export interface WsFrameOptions {
  readonly fin: boolean;
  readonly rsv1: boolean;
  readonly opcode: number;
  readonly mask: boolean;
  readonly readOnly: boolean;
  readonly maskBuffer?: Buffer;
  readonly generateMask?: (mask: Buffer) => void;
}

export interface WsSendOptions {
  readonly binary: boolean;
  readonly fin: boolean;
  readonly mask: boolean;
  readonly compress: boolean;
}

/** What `ws/lib/sender.js` writes to: `socket.write`, plus cork/uncork for two-buffer frames. */
export interface WsSocketLike {
  write(chunk: Buffer, cb?: () => void): boolean;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

export interface WsSender {
  send(data: Buffer, options: WsSendOptions, cb?: (error?: Error) => void): void;
}

export interface WsSenderClass {
  new (socket: WsSocketLike): WsSender;
  /** Frame `data`: one buffer (header + masked copy) or [header, payload]. */
  frame(data: Buffer, options: WsFrameOptions): Buffer[];
}

export interface WsPerMessageDeflateOptions {
  readonly isServer: boolean;
  readonly maxPayload?: number;
  readonly threshold?: number;
  readonly serverNoContextTakeover?: boolean;
  readonly clientNoContextTakeover?: boolean;
  readonly zlibDeflateOptions?: { readonly level?: number; readonly memLevel?: number };
}

export interface WsPerMessageDeflate {
  /** Negotiate: `params` is the list of parsed extension parameter sets (values as arrays). */
  accept(params: Record<string, (string | true)[]>[]): Record<string, unknown>;
  compress(data: Buffer, fin: boolean, cb: (error: Error | null, out: Buffer) => void): void;
  decompress(data: Buffer, fin: boolean, cb: (error: Error | null, out: Buffer) => void): void;
  cleanup(): void;
}

interface WsModule {
  readonly Receiver: new (options: WsReceiverOptions) => WsReceiver;
  readonly Sender: WsSenderClass;
  readonly PerMessageDeflate: new (options: WsPerMessageDeflateOptions) => WsPerMessageDeflate;
}

const require = createRequire(import.meta.url);
const ws: WsModule = require("ws");
const wsPackage: { version: string } = require("ws/package.json");

export const Receiver = ws.Receiver;
export const Sender = ws.Sender;
export const PerMessageDeflate = ws.PerMessageDeflate;
export const wsVersion = wsPackage.version;

/** Whether ws's optional native addons resolve (they change ws's mask and UTF-8 paths). */
export function wsNativeAddons(): { bufferutil: boolean; "utf-8-validate": boolean } {
  const has = (name: string): boolean => {
    try {
      require.resolve(name, { paths: [require.resolve("ws")] });
      return true;
    } catch {
      return false;
    }
  };
  return { bufferutil: has("bufferutil"), "utf-8-validate": has("utf-8-validate") };
}
