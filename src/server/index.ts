/** duplex/server — the WebSocket server. */
export {
  type SendData,
  type SendOptions,
  type SendResult,
  SLOW_CONSUMER_CLOSE_CODE,
  type SlowConsumerPolicy,
  SocketConnection as WebSocketConnection,
} from "../node/socket-connection.js";
export { type Rejection, type ServerOptions, WebSocketServer } from "./server.js";
