/** duplex/client — a WHATWG-style WebSocket for Node (see src/client/websocket.ts). */
export { CloseEvent, type CloseEventInit, ErrorEvent, type ErrorEventInit } from "./events.js";
export {
  type BinaryType,
  type ControlData,
  type ControlEvent,
  WebSocket,
  type WebSocketData,
  type WebSocketEventMap,
  type WebSocketOptions,
} from "./websocket.js";
