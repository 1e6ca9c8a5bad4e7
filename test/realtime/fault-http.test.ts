/**
 * The fault test of test/realtime/fault.test.ts for the HTTP transports: SDK clients on SSE, or
 * on long-polling, reach the server through a TCP relay that cuts connections (streams, polls,
 * command POSTs) at random moments while publishers run. Then, for every subscriber and
 * channel: order with no gap and no duplicate except right after an explicit recovered:false,
 * content equal to history, every acknowledged publish stored exactly once, everyone at the top
 * of every stream, and presence back to the live members (HTTP clients that vanish expire after
 * presenceTtlMs, kept short here). DUPLEX_FAULT_HTTP_CUTS sets the number of cuts (default 100).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RealtimeClient } from "../../src/realtime/client/node.js";
import type { Json } from "../../src/realtime/index.js";
import { type Relay, startRelay } from "../support/tcp-proxy.js";
import { Peer, type Running, startRealtime, until } from "./helpers.js";

const CUTS = Number(process.env.DUPLEX_FAULT_HTTP_CUTS ?? 100);
const SUBSCRIBERS = 4;
const PUBLISHERS = 2;
const CHANNELS = ["f:a", "f:b", "t:c"];

type Seen =
  | { kind: "sub"; recovered: boolean | undefined; offset: number; epoch: string }
  | { kind: "pub"; offset: number; epoch: string; data: Json };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const transport of ["sse", "polling"] as const) {
  describe(`realtime fault test over ${transport}: random TCP cuts under load`, () => {
    let s: Running;
    let relay: Relay;
    before(async () => {
      s = await startRealtime({
        namespaces: {
          f: { historySize: 1_000_000, publish: "all", presence: true, presenceQuery: "all" },
          t: { historySize: 8, publish: "all" },
        },
        presenceTtlMs: 1000,
        httpTransports: { keepaliveMs: 300, pollTimeoutMs: 300 },
      });
      relay = await startRelay(s.port);
    });
    after(async () => {
      await relay.close();
      await s.close();
    });

    const client = (): RealtimeClient =>
      new RealtimeClient(`ws://127.0.0.1:${relay.port}/realtime`, {
        transports: [transport],
        minReconnectDelayMs: 5,
        maxReconnectDelayMs: 80,
        connectTimeoutMs: 2000,
        requestTimeoutMs: 10_000,
        onlineEvents: null,
      });

    it(`keeps order, no gap or duplicate, exact recovery through ${CUTS} cuts`, async (t) => {
      const seen = new Map<string, Seen[]>();
      const subscribers: RealtimeClient[] = [];
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const c = client();
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

      let running = true;
      const acked: Array<{ channel: string; offset: number; p: number; seq: number }> = [];
      const publishers = Array.from({ length: PUBLISHERS }, (_, p) => {
        const c = client();
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

      let cuts = 0;
      while (cuts < CUTS) {
        await sleep(5 + Math.floor(Math.random() * 20));
        const open = [...relay.connections];
        if (open.length === 0) continue;
        open[Math.floor(Math.random() * open.length)]!.cut();
        cuts++;
      }
      running = false;
      await Promise.all(publishers.map((p) => p.loop));

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

      const history = new Map<string, Map<number, Json>>();
      for (const ch of CHANNELS) {
        const page = await s.broker.history(ch, { since: 0, limit: 10_000_000, historyTtlMs: 0 });
        history.set(
          ch,
          new Map(page.publications.map((p) => [p.offset, JSON.parse(p.data) as Json])),
        );
      }
      let delivered = 0;
      let unrecovered = 0;
      for (const [key, log] of seen) {
        const ch = key.split("/")[1]!;
        let pos: { offset: number; epoch: string } | undefined;
        const offsets = new Set<number>();
        const first = log[0];
        assert.ok(first?.kind === "sub", `${key}: starts with its subscribe`);
        for (const e of log) {
          if (e.kind === "sub") {
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
            `${key}: offset ${e.offset}@${e.epoch} after ${pos.offset}@${pos.epoch}`,
          );
          assert.ok(!offsets.has(e.offset), `${key}: offset ${e.offset} twice`);
          offsets.add(e.offset);
          const expected = history.get(ch)!.get(e.offset);
          if (expected !== undefined) assert.deepEqual(e.data, expected, `${key}: ${e.offset}`);
          pos = { offset: e.offset, epoch: e.epoch };
          delivered++;
        }
        if (ch.startsWith("f:")) {
          const expected = tops.get(ch)!.offset - first.offset;
          assert.equal(offsets.size, expected, `${key}: ${offsets.size} of ${expected} offsets`);
          assert.ok(
            log.every((e) => e.kind !== "sub" || e.recovered !== false),
            `${key}: f:* keeps all history, recovery must always succeed`,
          );
        }
      }
      for (const a of acked) {
        if (!a.channel.startsWith("f:")) continue;
        assert.deepEqual(history.get(a.channel)!.get(a.offset), { p: a.p, seq: a.seq });
      }
      for (const ch of ["f:a", "f:b"]) {
        const keys = [...history.get(ch)!.values()].map((d) => JSON.stringify(d));
        assert.equal(new Set(keys).size, keys.length, `${ch}: a retried publish was stored twice`);
      }

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
        `fault over ${transport}: ${cuts} cuts, ${acked.length} publishes acknowledged, ` +
          `${delivered} deliveries checked, ${unrecovered} recovered:false (t:c keeps 8)`,
      );
    });
  });
}
