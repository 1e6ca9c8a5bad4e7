/** duplex/server — the WebSocket server. */
export {
  type SendData,
  SocketConnection as WebSocketConnection,
} from "../node/socket-connection.js";
export { type Rejection, type ServerOptions, WebSocketServer } from "./server.js";
