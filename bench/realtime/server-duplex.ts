/**
 * Duplex realtime server for `npm run bench:realtime`:
 * `node --expose-gc server-duplex.mjs <drop|disconnect> <port>` (the runner bundles this file
 * with esbuild first). RealtimeServer + MemoryBroker on an http server, duplex.v1 on /realtime.
 *
 * Namespace `bench`: anyone may publish, history on (100), the slow-consumer policy from argv,
 * 1 MiB of queued bytes per subscriber before it applies. WebSocket heartbeat off,
 * permessage-deflate off (the default). Everything else is the library's defaults.
 *
 * The `mem` control command (bench/load/server-common.ts) also reports what the slow-consumer
 * policy did: `slowDisconnects` (sessions closed for being slow), `overQueue` (deliveries that
 * found the subscriber's queue above maxQueueBytes — each one dropped under "drop"),
 * `sessionsOverQueue` (distinct sessions that hit the limit), `queuedBytes` (sum of every
 * connection's bufferedAmount) and `sessions` (open sessions).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { MemoryBroker } from "../../src/broker/index.js";
import { RealtimeServer } from "../../src/realtime/index.js";
import type { Session } from "../../src/realtime/session.js";
import type { WebSocketConnection } from "../../src/server/index.js";
import { heapSpaces, parseServerArgs, ready } from "../load/server-common.js";

const { mode, port } = parseServerArgs(["drop", "disconnect"]);
const MAX_QUEUE_BYTES = 1024 * 1024;

let slowDisconnects = 0;
let overQueue = 0;
const sessionsOverQueue = new Set<string>();

/** Counts what the slow-consumer policy does, without changing it. */
class BenchRealtimeServer extends RealtimeServer {
  override handleConnection(ws: WebSocketConnection, request: unknown): Session | undefined {
    const session = super.handleConnection(ws, request);
    if (session === undefined) return session;
    // ChannelState asks bufferedAmount() right before applying the policy to a delivery.
    const buffered = session.bufferedAmount.bind(session);
    session.bufferedAmount = () => {
      const n = buffered();
      if (n > MAX_QUEUE_BYTES) {
        overQueue++;
        sessionsOverQueue.add(session.id);
      }
      return n;
    };
    const tooSlow = session.tooSlow.bind(session);
    session.tooSlow = () => {
      slowDisconnects++;
      tooSlow();
    };
    return session;
  }
}

const broker = new MemoryBroker();
const rt = new BenchRealtimeServer({
  broker,
  namespaces: {
    bench: {
      publish: "all",
      historySize: 100,
      slowConsumer: mode === "disconnect" ? "disconnect" : "drop",
      maxQueueBytes: MAX_QUEUE_BYTES,
    },
  },
});
await rt.start();
const server = http.createServer((req, res) => {
  if (!rt.handleHttp(req, res)) {
    res.writeHead(404);
    res.end();
  }
});
const wss = rt.attach(server, "/realtime", { pingIntervalMs: 0 });
server.listen(port, "127.0.0.1", () => {
  ready((server.address() as AddressInfo).port, () => {
    let queuedBytes = 0;
    for (const c of wss.clients) queuedBytes += c.bufferedAmount;
    return {
      sessions: rt.sessions.size,
      connections: wss.clients.size,
      queuedBytes,
      slowDisconnects,
      overQueue,
      sessionsOverQueue: sessionsOverQueue.size,
      publications: rt.stats.publications,
      delivered: rt.stats.delivered,
      ...heapSpaces(),
    };
  });
});
