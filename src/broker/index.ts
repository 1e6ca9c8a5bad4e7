/**
 * duplex/broker — public entry point of the `broker` layer (see docs/architecture.md).
 * Its implementation lands with its own issue; the subpath exists now so the package shape is final.
 */
export const LAYER = "broker";
