/**
 * Node.js bindings shared by the server and the client (zlib codec, socket driver).
 * Internal layer: not exported from the package.
 */
export const LAYER = "node";
