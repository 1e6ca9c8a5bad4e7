/**
 * SIGTERM of a node (a deploy, a scale-down): its clients get the reconnect code 4000, come back
 * through nginx on the other nodes (a draining node answers 503 to new WebSockets, which nginx
 * skips) and recover what they missed: no loss, no recovered:false. The node spreads its
 * reconnect orders over `--drain-ms` (DUPLEX_CLUSTER_DRAIN_MS, default 1000) so they do not all come
 * back at once. DUPLEX_CLUSTER_CLIENTS sets the number of subscribers (default 1000).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DisconnectCode } from "../../src/realtime/index.js";
import { clusterSuite, type NodeClient, nodeClient, until } from "./helpers.js";

const CLIENTS = Number(process.env.DUPLEX_CLUSTER_CLIENTS ?? 1000);
const CHANNELS = ["rooms:d0", "rooms:d1", "rooms:d2", "rooms:d3"];
/** `duplex serve --drain-ms`: the reconnect orders are spread over this window. */
const DRAIN_MS = Number(process.env.DUPLEX_CLUSTER_DRAIN_MS ?? 1000);
/** Clients in a presence channel (`chat:` namespace) next to the workload. */
const MEMBERS = 30;
const ROOM = "chat:drain";

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe(`cluster: SIGTERM (drain over ${DRAIN_MS} ms) of a node with ${CLIENTS} clients`, () => {
  const members: NodeClient[] = [];
  const suite = clusterSuite({ nodes: 3, serveArgs: ["--drain-ms", String(DRAIN_MS)] }, () => {
    for (const m of members) m.client.close();
  });

  it("its clients get 4000, reconnect to the other nodes and recover with no loss", async (t) => {
    const { cluster } = suite;
    const work = suite.workload({
      clients: CLIENTS,
      channels: CHANNELS,
      publishers: 4,
      publishPauseMs: 50,
    });
    await work.connect();
    for (let i = 0; i < MEMBERS; i++) {
      const m = nodeClient(cluster.realtimeUrl, `m${i}`);
      m.client.channel(ROOM).subscribe();
      m.client.connect();
      members.push(m);
    }
    await until(
      () => members.every((m) => m.client.channel(ROOM).state === "subscribed"),
      10_000,
      "members subscribed",
    );
    const victim = cluster.nodes[0]!;
    assert.ok(members.some((m) => m.node === victim.name));
    const onVictim = work.subscribers.filter((c) => c.node === victim.name);
    const all = [...work.subscribers, ...work.publishers, ...members];
    work.startPublishing();
    await until(() => work.acks.length >= 100, 30_000, "publishes before the drain");

    const termAt = performance.now();
    const exit = await cluster.kill(0, "SIGTERM");
    const exitMs = performance.now() - termAt;
    assert.equal(exit.code, 0, cluster.logs());
    await until(
      () => all.every((c) => c.node !== victim.name && work.subscribed(c)),
      30_000,
      "every client reconnected to another node",
    );
    for (const c of onVictim) assert.deepEqual(c.codes, [DisconnectCode.SHUTDOWN], c.name);
    // Presence: the drained node removed its members as it let them go; they are back under their
    // new connections, and nobody is listed twice (a leftover would stay for presenceTtlMs).
    const room = members[0]!.client.channel(ROOM);
    const live = (): string[] => members.map((m) => m.client.clientId ?? "?").sort();
    await until(
      async () => {
        const page = await room.presence({ limit: 100 });
        return (
          page.count === MEMBERS &&
          JSON.stringify(page.members.map((m) => m.client).sort()) === JSON.stringify(live())
        );
      },
      10_000,
      "presence = the members' current connections",
      () => cluster.logs(),
    );
    const back = onVictim.map((c) => c.connectedAt - termAt).sort((a, b) => a - b);
    const told = onVictim.map((c) => c.disconnectedAt - termAt).sort((a, b) => a - b);
    const gap = onVictim.map((c) => c.connectedAt - c.disconnectedAt).sort((a, b) => a - b);
    const connecting = onVictim.map((c) => c.connectedAt - c.attemptAt).sort((a, b) => a - b);
    const acksAt = work.acks.length;
    await until(() => work.acks.length >= acksAt + 100, 30_000, "publishes after the drain");
    await work.stopPublishing();
    await work.converge(30_000);

    const report = await work.verify();
    assert.deepEqual(work.checker.errors, [], "order, gaps, duplicates, content");
    assert.deepEqual(work.publishErrors, []);
    assert.equal(report.falseAcks, 0);
    assert.equal(report.silent, 0);
    assert.equal(report.unrecovered, 0, "nothing is lost in a drain: no recovered:false");
    assert.equal(report.doubled, 0);
    const expected = work.acks.reduce((n, a) => n + work.subscribersOf(a.channel), 0);
    assert.equal(report.received, expected, "each ack reached every subscriber of its channel");
    t.diagnostic(
      `drain: ${onVictim.length} of ${CLIENTS} subscribers on ${victim.name}; reconnected after ` +
        `p50 ${Math.round(quantile(back, 0.5))} ms, p99 ${Math.round(quantile(back, 0.99))} ms, ` +
        `last ${Math.round(back.at(-1) ?? 0)} ms; told (4000) after ${Math.round(told[0] ?? 0)}–` +
        `${Math.round(told.at(-1) ?? 0)} ms; disconnected for p50 ${Math.round(quantile(gap, 0.5))} ms, ` +
        `max ${Math.round(gap.at(-1) ?? 0)} ms (of which connecting p50 ${Math.round(quantile(connecting, 0.5))} ms, ` +
        `max ${Math.round(connecting.at(-1) ?? 0)} ms); node exited after ${Math.round(exitMs)} ms; ` +
        `${report.acks} publishes acknowledged, ${report.deliveries} deliveries checked`,
    );
  });
});
