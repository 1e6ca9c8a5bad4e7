/**
 * permessage-deflate (RFC 7692) as the conformance fuzzers speak it: extension header parsing,
 * the offers a fuzzing client makes, the answers a fuzzing server gives (Autobahn's accept
 * functions of case group 13), and a compressor / decompressor pair over node:zlib that honours
 * the negotiated window bits and context takeover.
 *
 * The decompressor is strict on purpose: it inflates with exactly the window the peer agreed to
 * and, when the peer agreed to no context takeover, with a fresh inflater for every message, so a
 * peer that compresses with a larger window or refers back into an earlier message cannot
 * produce a stream we accept.
 */
import * as zlib from "node:zlib";

export const PMD = "permessage-deflate";

/** One element of Sec-WebSocket-Extensions: a name and its parameters (true = no value). */
export interface Extension {
  readonly name: string;
  readonly params: ReadonlyArray<readonly [string, string | true]>;
}

/** Parse a Sec-WebSocket-Extensions value (RFC 6455 §9.1). Returns null on a syntax error. */
export function parseExtensions(value: string): Extension[] | null {
  const out: Extension[] = [];
  for (const element of value.split(",")) {
    const parts = element.split(";").map((p) => p.trim());
    const name = parts.shift();
    if (name === undefined || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return null;
    const params: [string, string | true][] = [];
    for (const p of parts) {
      const eq = p.indexOf("=");
      if (eq < 0) {
        if (p === "") return null;
        params.push([p.toLowerCase(), true]);
      } else {
        let v = p.slice(eq + 1).trim();
        if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
        params.push([p.slice(0, eq).trim().toLowerCase(), v]);
      }
    }
    out.push({ name: name.toLowerCase(), params });
  }
  return out;
}

export function formatExtension(ext: Extension): string {
  return [ext.name, ...ext.params.map(([k, v]) => (v === true ? k : `${k}=${v}`))].join("; ");
}

/** Negotiated parameters (window bits 15 when absent). */
export interface DeflateParams {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
}

/**
 * A permessage-deflate offer in the terms of Autobahn's case group 13, mapped onto the wire:
 * `requestNoContextTakeover` → server_no_context_takeover, `requestMaxWindowBits` →
 * server_max_window_bits=N; `clientNoContextTakeover` / `clientMaxWindowBits` are the offering
 * client's own hints (client_no_context_takeover, client_max_window_bits[=N]; the latter is
 * always offered, without a value unless given, as browsers do).
 */
export interface Offer {
  readonly requestNoContextTakeover: boolean;
  readonly requestMaxWindowBits: number; // 0 = not requested
  readonly clientNoContextTakeover: boolean;
  readonly clientMaxWindowBits: number; // 0 = offered without a value
}

export const DEFAULT_OFFER: Offer = {
  requestNoContextTakeover: false,
  requestMaxWindowBits: 0,
  clientNoContextTakeover: false,
  clientMaxWindowBits: 0,
};

export function offerExtension(offer: Offer): Extension {
  const params: [string, string | true][] = [];
  if (offer.clientNoContextTakeover) params.push(["client_no_context_takeover", true]);
  params.push([
    "client_max_window_bits",
    offer.clientMaxWindowBits === 0 ? true : String(offer.clientMaxWindowBits),
  ]);
  if (offer.requestNoContextTakeover) params.push(["server_no_context_takeover", true]);
  if (offer.requestMaxWindowBits !== 0) {
    params.push(["server_max_window_bits", String(offer.requestMaxWindowBits)]);
  }
  return { name: PMD, params };
}

/** The options our own WebSocket client needs to make the same offer. */
export function clientOptionsFor(offer: Offer): {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
} {
  return {
    ...(offer.requestNoContextTakeover ? { serverNoContextTakeover: true } : {}),
    ...(offer.clientNoContextTakeover ? { clientNoContextTakeover: true } : {}),
    ...(offer.requestMaxWindowBits !== 0
      ? { serverMaxWindowBits: offer.requestMaxWindowBits }
      : {}),
    ...(offer.clientMaxWindowBits !== 0 ? { clientMaxWindowBits: offer.clientMaxWindowBits } : {}),
  };
}

const BITS = /^(8|9|1[0-5])$/;

interface ParsedOffer {
  serverNct: boolean;
  clientNct: boolean;
  serverBits: number | undefined;
  /** true: offered without a value. */
  clientBits: number | true | undefined;
}

/** A client's permessage-deflate offer as a fuzzing server reads it; null when malformed. */
export function parseOffer(ext: Extension): ParsedOffer | null {
  if (ext.name !== PMD) return null;
  const seen = new Set<string>();
  const out: ParsedOffer = {
    serverNct: false,
    clientNct: false,
    serverBits: undefined,
    clientBits: undefined,
  };
  for (const [k, v] of ext.params) {
    if (seen.has(k)) return null;
    seen.add(k);
    if (k === "server_no_context_takeover" && v === true) out.serverNct = true;
    else if (k === "client_no_context_takeover" && v === true) out.clientNct = true;
    else if (k === "server_max_window_bits" && v !== true && BITS.test(v)) out.serverBits = +v;
    else if (k === "client_max_window_bits" && (v === true || BITS.test(v))) {
      out.clientBits = v === true ? true : +v;
    } else return null;
  }
  return out;
}

/**
 * How a fuzzing server answers: what it asks of the client on top of honouring the client's
 * requests. Autobahn's accept1..accept6 are (requestNoContextTakeover, requestMaxWindowBits):
 * (false, 0), (true, 0), (false, 9), (false, 15), (true, 9), (true, 15); accept7 tries
 * (true, 9), then (true, 0), then (false, 0).
 */
export interface AcceptRule {
  readonly requestNoContextTakeover: boolean;
  readonly requestMaxWindowBits: number;
}

/** Answer the first offer one of `rules` can accept; null when none (no compression). */
export function acceptOffers(
  offers: readonly Extension[],
  rules: readonly AcceptRule[],
): { response: Extension; params: DeflateParams } | null {
  for (const rule of rules) {
    for (const ext of offers) {
      const offer = parseOffer(ext);
      if (offer === null) continue;
      // Window bits can only be imposed on a client that announced client_max_window_bits.
      if (rule.requestMaxWindowBits !== 0 && offer.clientBits === undefined) continue;
      const params: [string, string | true][] = [];
      if (offer.serverNct) params.push(["server_no_context_takeover", true]);
      if (offer.serverBits !== undefined) {
        params.push(["server_max_window_bits", String(offer.serverBits)]);
      }
      const clientNct = rule.requestNoContextTakeover || offer.clientNct;
      if (clientNct) params.push(["client_no_context_takeover", true]);
      let clientBits = 15;
      if (typeof offer.clientBits === "number") clientBits = offer.clientBits;
      if (rule.requestMaxWindowBits !== 0) {
        clientBits = Math.min(clientBits, rule.requestMaxWindowBits);
      }
      if (rule.requestMaxWindowBits !== 0 || typeof offer.clientBits === "number") {
        params.push(["client_max_window_bits", String(clientBits)]);
      }
      return {
        response: { name: PMD, params },
        params: {
          serverNoContextTakeover: offer.serverNct,
          clientNoContextTakeover: clientNct,
          serverMaxWindowBits: offer.serverBits ?? 15,
          clientMaxWindowBits: clientBits,
        },
      };
    }
  }
  return null;
}

/**
 * A fuzzing client checks the server's answer (RFC 7692 §5, §7.1) against the offers it sent.
 * Returns the negotiated parameters, or a string saying why the answer is invalid.
 */
export function checkResponse(
  response: Extension,
  offers: readonly Offer[],
): DeflateParams | string {
  if (response.name !== PMD) return `server answered with unknown extension ${response.name}`;
  const seen = new Set<string>();
  let serverNct = false;
  let clientNct = false;
  let serverBits: number | undefined;
  let clientBits: number | undefined;
  for (const [k, v] of response.params) {
    if (seen.has(k)) return `parameter ${k} repeated in the response`;
    seen.add(k);
    if (k === "server_no_context_takeover" && v === true) serverNct = true;
    else if (k === "client_no_context_takeover" && v === true) clientNct = true;
    else if (k === "server_max_window_bits" && v !== true && BITS.test(v)) serverBits = +v;
    else if (k === "client_max_window_bits" && v !== true && BITS.test(v)) clientBits = +v;
    else return `invalid parameter in the response: ${k}${v === true ? "" : `=${v}`}`;
  }
  const fits = offers.some((o) => {
    if (o.requestNoContextTakeover && !serverNct) return false;
    if (o.requestMaxWindowBits !== 0) {
      if (serverBits === undefined || serverBits > o.requestMaxWindowBits) return false;
    }
    if (
      clientBits !== undefined &&
      o.clientMaxWindowBits !== 0 &&
      clientBits > o.clientMaxWindowBits
    ) {
      return false;
    }
    return true;
  });
  if (!fits) return `response "${formatExtension(response)}" accepts none of the offers`;
  return {
    serverNoContextTakeover: serverNct,
    clientNoContextTakeover: clientNct,
    serverMaxWindowBits: serverBits ?? 15,
    clientMaxWindowBits: clientBits ?? 15,
  };
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Run one zlib transform step: write `input`, sync-flush, collect what comes out. */
function step(
  stream: zlib.DeflateRaw | zlib.InflateRaw,
  input: Buffer,
  maxOut: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const finish = (error: Error | null): void => {
      if (done) return;
      done = true;
      stream.off("data", onData);
      stream.off("error", finish);
      if (error !== null) reject(error);
      else resolve(Buffer.concat(chunks, length));
    };
    const onData = (chunk: Buffer): void => {
      length += chunk.length;
      if (length > maxOut) finish(new Error(`inflated output exceeds ${maxOut} bytes`));
      else chunks.push(chunk);
    };
    stream.on("data", onData);
    stream.on("error", finish);
    stream.write(input);
    stream.flush(zlib.constants.Z_SYNC_FLUSH, () => finish(null));
  });
}

/** One direction's compressor (the fuzzer's own messages). */
export class Compressor {
  private stream: zlib.DeflateRaw | null = null;
  private readonly windowBits: number;
  private readonly noContextTakeover: boolean;
  private readonly level: number;

  constructor(windowBits: number, noContextTakeover: boolean, level = 6) {
    // zlib cannot produce raw deflate with an 8-bit window; a 9-bit deflater never emits
    // distances beyond what an 8-bit inflater keeps (see src/protocol/permessage-deflate.ts).
    this.windowBits = Math.max(9, windowBits);
    this.noContextTakeover = noContextTakeover;
    this.level = level;
  }

  /** Compress one whole message; the result has the 00 00 FF FF tail removed (RFC 7692 §7.2.1). */
  async compress(message: Buffer): Promise<Buffer> {
    if (this.stream === null) {
      this.stream = zlib.createDeflateRaw({ windowBits: this.windowBits, level: this.level });
      this.stream.on("error", ignore);
    }
    const out = await step(this.stream, message, Number.MAX_SAFE_INTEGER);
    if (this.noContextTakeover) {
      this.stream.close();
      this.stream = null;
    }
    if (out.length >= 4 && out.subarray(out.length - 4).equals(TAIL)) {
      return out.subarray(0, out.length - 4);
    }
    return out;
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
  }
}

/** One direction's decompressor (the peer's messages), strict about the negotiated window. */
export class Decompressor {
  private stream: zlib.InflateRaw | null = null;
  private readonly windowBits: number;
  private readonly noContextTakeover: boolean;

  constructor(windowBits: number, noContextTakeover: boolean) {
    this.windowBits = windowBits;
    this.noContextTakeover = noContextTakeover;
  }

  async decompress(compressed: Buffer, maxOut: number): Promise<Buffer> {
    if (this.stream === null) {
      this.stream = zlib.createInflateRaw({ windowBits: this.windowBits });
      this.stream.on("error", ignore);
    }
    const stream = this.stream;
    try {
      return await step(stream, Buffer.concat([compressed, TAIL]), maxOut);
    } catch (error) {
      this.close();
      throw error;
    } finally {
      if (this.noContextTakeover) this.close();
    }
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
  }
}

function ignore(): void {}
