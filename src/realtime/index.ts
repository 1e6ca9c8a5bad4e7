/**
 * duplex/realtime — public entry point of the `realtime` layer (see docs/architecture.md).
 * Its implementation lands with its own issue; the subpath exists now so the package shape is final.
 */
export const LAYER = "realtime";
