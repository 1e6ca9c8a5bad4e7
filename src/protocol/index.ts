/** duplex/protocol — the sans-I/O RFC 6455 / RFC 7692 core. No sockets, no timers, no node: imports. */
export * from "./errors.js";
export * from "./limits.js";
