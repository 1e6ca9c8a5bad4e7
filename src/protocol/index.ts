/** duplex/protocol — the sans-I/O RFC 6455 / RFC 7692 core. No sockets, no timers, no node: imports. */
export * from "./close-codes.js";
export * from "./codec.js";
export * from "./connection.js";
export * from "./errors.js";
export * from "./extension-header.js";
export * from "./frame.js";
export * from "./handshake.js";
export * from "./limits.js";
export * from "./mask.js";
export * from "./permessage-deflate.js";
export { base64Decode, base64Encode, sha1 } from "./sha1.js";
export { parseSubprotocols } from "./subprotocol-header.js";
export * from "./utf8.js";
