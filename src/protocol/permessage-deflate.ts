/**
 * permessage-deflate negotiation (RFC 7692 §5, §7.1). Only the parameters are decided here;
 * compression itself lives elsewhere.
 *
 * ## windowBits 8
 * zlib cannot create a *raw* deflater with windowBits 8 (deflateInit2 rejects it since 1.2.9;
 * Node silently uses 9). That does not make 8 impossible to honour: zlib's deflater never emits
 * a match distance above `2^windowBits - 262` (MAX_DIST = w_size - MIN_LOOKAHEAD), i.e. at most
 * 250 bytes with windowBits 9, which is within the 256-byte window a peer inflating with 8
 * keeps. So a zlib deflater at 9 produces a stream that is valid for a negotiated 8, and we
 * negotiate 8 like any other value (server: answer `server_max_window_bits=8` when asked for
 * it; client: accept `client_max_window_bits=8`). The compressor MUST open its deflater with
 * `max(9, bits)`; the inflater can use the negotiated value as is (raw inflate supports 8).
 * test/protocol/permessage-deflate.test.ts checks this zlib property with node:zlib.
 */
import { HandshakeError, LimitsError } from "./errors.js";
import { createParams, type ExtensionOffer } from "./extension-header.js";

export const PERMESSAGE_DEFLATE = "permessage-deflate";

/**
 * What the local side wants/allows. All fields optional.
 * - Client ({@link deflateOffer}, {@link validateDeflateResponse}): `serverNoContextTakeover`
 *   and `serverMaxWindowBits` are requests the server must accept; `clientNoContextTakeover`
 *   is a hint that we will reset our compressor; `clientMaxWindowBits` caps our own window
 *   (absent: we offer the parameter without a value, like browsers: "any limit is fine").
 * - Server ({@link acceptDeflateOffer}): `true` for a `*NoContextTakeover` imposes it;
 *   `serverNoContextTakeover: false` refuses offers that request it; `serverMaxWindowBits`
 *   caps our compressor; `clientMaxWindowBits` caps the client's window and therefore
 *   requires offers that carry `client_max_window_bits`.
 */
export interface DeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
}

/** Negotiated parameters; window bits are 8..15 (15 when the parameter was absent). */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

const DEFAULT_WINDOW_BITS = 15;
const SERVER_NCT = "server_no_context_takeover";
const CLIENT_NCT = "client_no_context_takeover";
const SERVER_MWB = "server_max_window_bits";
const CLIENT_MWB = "client_max_window_bits";

/** RFC 7692 §7.1.2: 1*DIGIT without leading zeros, 8..15. Exact strings only. */
const WINDOW_BITS: ReadonlyMap<string, number> = new Map(
  [8, 9, 10, 11, 12, 13, 14, 15].map((bits) => [String(bits), bits]),
);

function parseBits(value: string | true | undefined): number | undefined {
  return typeof value === "string" ? WINDOW_BITS.get(value) : undefined;
}

function checkBitsOption(
  opts: DeflateOptions,
  field: "serverMaxWindowBits" | "clientMaxWindowBits",
) {
  const bits = opts[field];
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 8 || bits > 15)) {
    throw new LimitsError(field, `must be an integer between 8 and 15, got ${String(bits)}`);
  }
}

function checkOptions(opts: DeflateOptions): void {
  checkBitsOption(opts, "serverMaxWindowBits");
  checkBitsOption(opts, "clientMaxWindowBits");
}

/** Client: the `permessage-deflate` element to send (RFC 7692 §7.1). */
export function deflateOffer(opts: DeflateOptions = {}): ExtensionOffer {
  checkOptions(opts);
  const params = createParams();
  if (opts.serverNoContextTakeover) params[SERVER_NCT] = true;
  if (opts.clientNoContextTakeover) params[CLIENT_NCT] = true;
  if (opts.serverMaxWindowBits !== undefined) params[SERVER_MWB] = String(opts.serverMaxWindowBits);
  params[CLIENT_MWB] =
    opts.clientMaxWindowBits === undefined ? true : String(opts.clientMaxWindowBits);
  return { name: PERMESSAGE_DEFLATE, params };
}

interface ParsedOffer {
  serverNct: boolean;
  clientNct: boolean;
  serverBits: number | undefined;
  clientBits: number | true | undefined;
}

/** RFC 7692 §7.1: only these four parameters, with these values; otherwise undefined. */
function parseOffer(offer: ExtensionOffer): ParsedOffer | undefined {
  const parsed: ParsedOffer = {
    serverNct: false,
    clientNct: false,
    serverBits: undefined,
    clientBits: undefined,
  };
  for (const key of Object.keys(offer.params)) {
    const value = offer.params[key];
    if (key === SERVER_NCT || key === CLIENT_NCT) {
      if (value !== true) return undefined; // §7.1.1: these have no value
      if (key === SERVER_NCT) parsed.serverNct = true;
      else parsed.clientNct = true;
    } else if (key === SERVER_MWB) {
      parsed.serverBits = parseBits(value); // §7.1.2.1: a value is required
      if (parsed.serverBits === undefined) return undefined;
    } else if (key === CLIENT_MWB) {
      parsed.clientBits = value === true ? true : parseBits(value); // §7.1.2.2: value optional
      if (parsed.clientBits === undefined) return undefined;
    } else {
      return undefined; // unknown parameter
    }
  }
  return parsed;
}

/**
 * Server: accept the first acceptable `permessage-deflate` offer (clients may send several,
 * best first). Returns the negotiated parameters and the element to put in the response, or
 * `null` when no offer is acceptable (the connection then proceeds without compression).
 *
 * Per RFC 7692 §5 an offer with an unknown parameter, an invalid value or a duplicate
 * parameter is *declined* (skipped), not answered with 400. (Duplicates are already rejected
 * with 400 by parseExtensions, as the header itself is then ambiguous.)
 */
export function acceptDeflateOffer(
  offers: readonly ExtensionOffer[],
  opts: DeflateOptions = {},
): { params: DeflateParams; response: ExtensionOffer } | null {
  checkOptions(opts);
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const parsed = parseOffer(offer);
    if (parsed === undefined) continue;

    // §7.1.1.1: accepting an offer with server_no_context_takeover means honouring it.
    if (parsed.serverNct && opts.serverNoContextTakeover === false) continue;
    // §7.1.2.2: we can only limit the client's window if it said it supports the parameter.
    if (opts.clientMaxWindowBits !== undefined && parsed.clientBits === undefined) continue;

    const response = createParams();
    const serverNct = parsed.serverNct || opts.serverNoContextTakeover === true;
    // §7.1.1.2: the server may always ask the client not to take over context; echoing the
    // client's own hint tells it we rely on it.
    const clientNct = parsed.clientNct || opts.clientNoContextTakeover === true;
    if (serverNct) response[SERVER_NCT] = true;
    if (clientNct) response[CLIENT_NCT] = true;

    // §7.1.2.1: answer with the same or a smaller value than offered (8 included, see top).
    let serverBits = DEFAULT_WINDOW_BITS;
    if (parsed.serverBits !== undefined || opts.serverMaxWindowBits !== undefined) {
      serverBits = Math.min(
        parsed.serverBits ?? DEFAULT_WINDOW_BITS,
        opts.serverMaxWindowBits ?? DEFAULT_WINDOW_BITS,
      );
      response[SERVER_MWB] = String(serverBits);
    }

    // §7.1.2.2: never include client_max_window_bits unless offered; when the client gave a
    // value, it already promised to stay within it, and we echo (or lower) it.
    let clientBits = DEFAULT_WINDOW_BITS;
    if (parsed.clientBits !== undefined) {
      const offered = parsed.clientBits === true ? DEFAULT_WINDOW_BITS : parsed.clientBits;
      clientBits = Math.min(offered, opts.clientMaxWindowBits ?? DEFAULT_WINDOW_BITS);
      if (parsed.clientBits !== true || opts.clientMaxWindowBits !== undefined) {
        response[CLIENT_MWB] = String(clientBits);
      }
    }

    return {
      params: {
        serverNoContextTakeover: serverNct,
        clientNoContextTakeover: clientNct,
        serverMaxWindowBits: serverBits,
        clientMaxWindowBits: clientBits,
      },
      response: { name: PERMESSAGE_DEFLATE, params: response },
    };
  }
  return null;
}

/** Client-side failures carry 502 (invalid answer from the peer), as in handshake.ts. */
function reject(message: string): never {
  throw new HandshakeError("WS_ERR_HANDSHAKE_EXTENSION", 502, `permessage-deflate: ${message}`);
}

/**
 * Client: validate the server's `permessage-deflate` response element against what
 * {@link deflateOffer} sent for `offered` (RFC 7692 §5, §7.1.1, §7.1.2). Throws
 * {@link HandshakeError} (`WS_ERR_HANDSHAKE_EXTENSION`) when the client must fail the
 * connection: unknown parameter, a value where none is allowed (or none where one is
 * required), window bits outside 8..15 or with leading zeros, a window larger than we asked
 * for, or a request of ours (`server_no_context_takeover`, `server_max_window_bits`) that the
 * response does not acknowledge.
 */
export function validateDeflateResponse(
  response: ExtensionOffer,
  offered: DeflateOptions = {},
): DeflateParams {
  checkOptions(offered);
  if (response.name !== PERMESSAGE_DEFLATE) reject(`unexpected extension "${response.name}"`);
  let serverNct = false;
  let clientNct = false;
  let serverBits: number | undefined;
  let clientBits: number | undefined;
  for (const key of Object.keys(response.params)) {
    const value = response.params[key];
    if (key === SERVER_NCT || key === CLIENT_NCT) {
      if (value !== true) reject(`parameter ${key} must not have a value`);
      if (key === SERVER_NCT) serverNct = true;
      else clientNct = true;
    } else if (key === SERVER_MWB || key === CLIENT_MWB) {
      const bits = parseBits(value);
      // §7.1.2.2: in a response, client_max_window_bits must carry a value too.
      if (bits === undefined) reject(`parameter ${key} must be an integer 8..15`);
      const limit = key === SERVER_MWB ? offered.serverMaxWindowBits : offered.clientMaxWindowBits;
      if (limit !== undefined && bits > limit) {
        reject(`${key}=${bits} exceeds the offered ${limit}`);
      }
      if (key === SERVER_MWB) serverBits = bits;
      else clientBits = bits;
    } else {
      reject(`unknown parameter "${key}"`);
    }
  }
  // §7.1.1.1 / §7.1.2.1: the server accepts these requests by including the parameter.
  if (offered.serverNoContextTakeover && !serverNct) {
    reject(`server ignored the requested ${SERVER_NCT}`);
  }
  if (offered.serverMaxWindowBits !== undefined && serverBits === undefined) {
    reject(`server ignored the requested ${SERVER_MWB}`);
  }
  return {
    serverNoContextTakeover: serverNct,
    // Our own hint binds us even if the server did not echo it.
    clientNoContextTakeover: clientNct || offered.clientNoContextTakeover === true,
    serverMaxWindowBits: serverBits ?? DEFAULT_WINDOW_BITS,
    clientMaxWindowBits: clientBits ?? offered.clientMaxWindowBits ?? DEFAULT_WINDOW_BITS,
  };
}
