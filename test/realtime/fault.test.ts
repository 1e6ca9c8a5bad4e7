/**
 * Fault test: subscribers and publishers (the client SDK) reach the server through a TCP relay
 * that cuts connections at random moments — hundreds of times — while publishers run. It runs
 * over each transport: WebSocket, and the HTTP transports SSE and long-polling (where the cuts
 * hit streams, polls and command POSTs). Then, for every subscriber and channel, the invariants
 * of docs/guarantees.md are checked on what the application saw:
 *   - per-channel order and no gap: each publication is exactly the next offset of its epoch,
 *     except right after an explicit `recovered: false`;
 *   - no duplicate offset;
 *   - content: offset N carries what history holds at N;
 *   - acknowledged publishes are in history exactly once (outbox retries reuse the key);
 *   - every subscriber ends at the stream's top offset;
 *   - presence converges to the live members after all the abrupt disconnects (HTTP clients
 *     that vanish expire after presenceTtlMs, kept short here).
 * DUPLEX_FAULT_CUTS sets the number of WebSocket cuts (default 300), DUPLEX_FAULT_HTTP_CUTS the
 * number per HTTP transport (default 100).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RealtimeClient } from "../../src/realtime/client/node.js";
import type { TransportKind } from "../../src/realtime/client/types.js";
import type { Json, RealtimeServerOptions } from "../../src/realtime/index.js";
import { type Relay, startRelay } from "../support/tcp-proxy.js";
import { Peer, type Running, startRealtime, until } from "./helpers.js";

const PUBLISHERS = 2;
/** Streams that keep everything (always recoverable) and one that keeps 8 (often not). */
const CHANNELS = ["f:a", "f:b", "t:c"];
const NAMESPACES = {
  f: { historySize: 1_000_000, publish: "all", presence: true, presenceQuery: "all" },
  t: { historySize: 8, publish: "all" },
} as const;

type Seen =
  | { kind: "sub"; recovered: boolean | undefined; offset: number; epoch: string }
  | { kind: "pub"; offset: number; epoch: string; data: Json };

interface FaultRun {
  readonly transport: TransportKind;
  readonly cuts: number;
  readonly subscribers: number;
  /** Pause between two cuts: min + random(0, spread) ms. */
  readonly pause: { readonly min: number; readonly spread: number };
  readonly server: Partial<RealtimeServerOptions>;
  readonly ws?: Parameters<typeof startRealtime>[1];
}

const RUNS: readonly FaultRun[] = [
  {
    transport: "websocket",
    cuts: Number(process.env.DUPLEX_FAULT_CUTS ?? 300),
    subscribers: 8,
    pause: { min: 2, spread: 15 },
    server: {},
    ws: { pingIntervalMs: 0 },
  },
  ...(["sse", "polling"] as const).map((transport) => ({
    transport,
    cuts: Number(process.env.DUPLEX_FAULT_HTTP_CUTS ?? 100),
    subscribers: 4,
    pause: { min: 5, spread: 20 },
    server: { presenceTtlMs: 1000, httpTransports: { keepaliveMs: 300, pollTimeoutMs: 300 } },
  })),
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const run of RUNS) faultSuite(run);

function faultSuite(run: FaultRun): void {
  const { transport, subscribers: SUBSCRIBERS, cuts: CUTS } = run;

  function client(url: string): RealtimeClient {
    return new RealtimeClient(url, {
      transports: [transport],
      minReconnectDelayMs: 5,
      maxReconnectDelayMs: 80,
      connectTimeoutMs: 2000,
      requestTimeoutMs: 10_000,
      onlineEvents: null,
    });
  }

  describe(`realtime fault test over ${transport}: random TCP cuts under load`, () => {
    let s: Running;
    let relay: Relay;
    before(async () => {
      s = await startRealtime({ namespaces: NAMESPACES, ...run.server }, run.ws);
      relay = await startRelay(s.port);
    });
    after(async () => {
      await relay.close();
      await s.close();
    });

    it(`keeps order, no gap or duplicate, exact recovery through ${CUTS} cuts`, async (t) => {
      const url = `ws://127.0.0.1:${relay.port}/realtime`;
      const seen = new Map<string, Seen[]>(); // `${subscriber}/${channel}`
      const subscribers: RealtimeClient[] = [];
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const c = client(url);
        for (const ch of CHANNELS) {
          const log: Seen[] = [];
          seen.set(`${i}/${ch}`, log);
          const sub = c.channel(ch);
          sub.on("subscribed", (e) =>
            log.push({ kind: "sub", recovered: e.recovered, offset: e.offset, epoch: e.epoch }),
          );
          sub.on("publication", (p) =>
            log.push({ kind: "pub", offset: p.offset, epoch: p.epoch, data: p.data }),
          );
          sub.subscribe();
        }
        c.connect();
        subscribers.push(c);
      }
      await until(
        () =>
          subscribers.every((c) => CHANNELS.every((ch) => c.channel(ch).state === "subscribed")),
        10_000,
        "subscribers subscribed",
      );

      // Publishers: each publishes {p, seq} round-robin over the channels, waiting for each ack.
      let running = true;
      const acked: Array<{ channel: string; offset: number; p: number; seq: number }> = [];
      const publishers = Array.from({ length: PUBLISHERS }, (_, p) => {
        const c = client(url);
        c.connect();
        const loop = (async () => {
          for (let seq = 0; running; seq++) {
            const channel = CHANNELS[seq % CHANNELS.length]!;
            const r = await c.publish(channel, { p, seq });
            acked.push({ channel, offset: r.offset, p, seq });
          }
        })();
        return { c, loop };
      });

      // The cutter.
      let cuts = 0;
      while (cuts < CUTS) {
        await sleep(run.pause.min + Math.floor(Math.random() * run.pause.spread));
        const open = [...relay.connections];
        if (open.length === 0) continue;
        open[Math.floor(Math.random() * open.length)]!.cut();
        cuts++;
      }
      running = false;
      await Promise.all(publishers.map((p) => p.loop));

      // Everyone catches up to the top of every stream.
      const tops = new Map<string, { offset: number; epoch: string }>();
      for (const ch of CHANNELS) {
        const page = await s.broker.history(ch, { limit: 0, historyTtlMs: 0 });
        tops.set(ch, { offset: page.offset, epoch: page.epoch });
      }
      await until(
        () =>
          subscribers.every((c) =>
            CHANNELS.every((ch) => {
              const pos = c.channel(ch).position;
              const top = tops.get(ch)!;
              return pos !== undefined && pos.offset === top.offset && pos.epoch === top.epoch;
            }),
          ),
        20_000,
        "every subscriber at the top of every stream",
      );

      // Invariants per subscriber and channel.
      const history = new Map<string, Map<number, Json>>();
      for (const ch of CHANNELS) {
        const page = await s.broker.history(ch, { since: 0, limit: 10_000_000, historyTtlMs: 0 });
        history.set(
          ch,
          new Map(page.publications.map((p) => [p.offset, JSON.parse(p.data) as Json])),
        );
      }
      let unrecovered = 0;
      let delivered = 0;
      let resubscribes = 0;
      for (const [key, log] of seen) {
        const ch = key.split("/")[1]!;
        let pos: { offset: number; epoch: string } | undefined;
        const offsets = new Set<number>();
        const first = log[0];
        assert.ok(first?.kind === "sub", `${key}: starts with its subscribe`);
        for (const e of log) {
          if (e.kind === "sub") {
            resubscribes++;
            if (pos === undefined || e.recovered === false) {
              if (e.recovered === false) unrecovered++;
              pos = { offset: e.offset, epoch: e.epoch };
            }
            continue;
          }
          assert.ok(pos !== undefined, `${key}: publication before subscribed`);
          const starts = pos.epoch === "" && pos.offset === 0 && e.offset === 1;
          assert.ok(
            starts || (e.epoch === pos.epoch && e.offset === pos.offset + 1),
            `${key}: offset ${e.offset}@${e.epoch} after ${pos.offset}@${pos.epoch} (gap, duplicate or reorder)`,
          );
          assert.ok(!offsets.has(e.offset), `${key}: offset ${e.offset} twice`);
          offsets.add(e.offset);
          const expected = history.get(ch)!.get(e.offset);
          if (expected !== undefined)
            assert.deepEqual(e.data, expected, `${key}: content of ${e.offset}`);
          pos = { offset: e.offset, epoch: e.epoch };
          delivered++;
        }
        if (ch.startsWith("f:")) {
          // Streams that keep everything: every offset was delivered, nothing unrecovered.
          const top = tops.get(ch)!.offset;
          const expected = top - first.offset;
          assert.equal(offsets.size, expected, `${key}: ${offsets.size} of ${expected} offsets`);
        }
      }
      for (const log of [...seen.entries()].filter(([k]) => k.includes("/f:")).map(([, l]) => l)) {
        assert.ok(
          log.every((e) => e.kind !== "sub" || e.recovered !== false),
          "f:* keeps all history: recovery must always succeed",
        );
      }

      // Acknowledged publishes: in history at their offset, each (p, seq) exactly once.
      for (const a of acked) {
        if (!a.channel.startsWith("f:")) continue;
        assert.deepEqual(history.get(a.channel)!.get(a.offset), { p: a.p, seq: a.seq });
      }
      for (const ch of ["f:a", "f:b"]) {
        const keys = [...history.get(ch)!.values()].map((d) => JSON.stringify(d));
        assert.equal(new Set(keys).size, keys.length, `${ch}: a retried publish was stored twice`);
      }

      // Presence converges: exactly the live subscribers, after all the abrupt disconnects.
      const probe = await Peer.connect(s.url);
      await until(
        async () =>
          (await probe.peer.request({ type: "presence", channel: "f:a", limit: 0 })).result
            .count === SUBSCRIBERS,
        10_000,
        "presence count",
      );
      probe.peer.close();

      for (const c of [...subscribers, ...publishers.map((p) => p.c)]) c.close();
      t.diagnostic(
        `fault over ${transport}: ${cuts} cuts, ${acked.length} publishes acknowledged, ${delivered} deliveries checked, ` +
          `${resubscribes} subscribes, ${unrecovered} recovered:false (t:c keeps 8)`,
      );
    });
  });
}
