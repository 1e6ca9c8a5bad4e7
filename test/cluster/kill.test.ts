/**
 * kill -9 of a node under load: DUPLEX_CLUSTER_CLIENTS subscribers (default 1000, the Node SDK,
 * all in this process) follow two of four channels each through nginx while publishers run; one
 * node is killed with SIGKILL. Every client must end up connected to a surviving node, and every
 * subscriber must receive every acknowledged publication exactly once, in order — nothing is lost
 * with the node, since history lives in Redis and the SDK resubscribes from its positions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterSuite, type NodeClient, nodeClient, sleep, until } from "./helpers.js";

const CLIENTS = Number(process.env.DUPLEX_CLUSTER_CLIENTS ?? 1000);
const CHANNELS = ["rooms:k0", "rooms:k1", "rooms:k2", "rooms:k3"];
const PUBLISHERS = 4;
/** Acknowledged publishes before the kill, and after it (bounded work). */
const BEFORE = 100;
const AFTER = 200;

describe(`cluster: kill -9 of a node with ${CLIENTS} clients`, () => {
  const suite = clusterSuite({ nodes: 3 });

  it("every client moves to a surviving node; every acked publication arrives exactly once, in order", async (t) => {
    const { cluster } = suite;
    const work = suite.workload({
      clients: CLIENTS,
      channels: CHANNELS,
      channelsPerClient: 2,
      publishers: PUBLISHERS,
      publishPauseMs: 20,
    });
    await work.connect();
    const victim = cluster.nodes[0]!;
    const onVictim = work.subscribers.filter((c) => c.node === victim.name);
    assert.ok(onVictim.length >= CLIENTS / 4, `${onVictim.length} clients on ${victim.name}`);

    work.startPublishing();
    await until(() => work.acks.length >= BEFORE, 30_000, "publishes before the kill");
    const killedAt = performance.now();
    const exit = await cluster.kill(0, "SIGKILL");
    assert.equal(exit.signal, "SIGKILL");

    // Every client is back, on another node, with all its subscriptions.
    const all = [...work.subscribers, ...work.publishers];
    await until(
      () => all.every((c) => c.node !== victim.name && work.subscribed(c)),
      30_000,
      "every client reconnected to a surviving node",
      () => cluster.logs(),
    );
    const reconnectMs = Math.max(...onVictim.map((c) => c.connectedAt - killedAt));
    const acksAtKill = work.acks.length;
    await until(() => work.acks.length >= acksAtKill + AFTER, 30_000, "publishes after the kill");
    await work.stopPublishing();
    await work.converge(30_000);

    const report = await work.verify();
    assert.deepEqual(work.checker.errors, [], "order, gaps, duplicates, content");
    assert.deepEqual(work.publishErrors, []);
    assert.equal(report.falseAcks, 0, "acknowledged but stored nowhere");
    assert.equal(report.silent, 0, "acknowledged but missed without recovered:false");
    assert.equal(report.unrecovered, 0, "history in Redis covers every gap: no recovered:false");
    assert.equal(report.told, 0);
    assert.equal(report.doubled, 0, "a retried publish stored twice");
    const expected = work.acks.reduce((n, a) => n + work.subscribersOf(a.channel), 0);
    assert.equal(report.received, expected, "each ack reached every subscriber of its channel");
    const survivors = new Set(all.map((c) => c.node));
    assert.ok(!survivors.has(victim.name));
    t.diagnostic(
      `kill -9: ${CLIENTS} subscribers (${onVictim.length} on ${victim.name}), ` +
        `${report.acks} publishes acknowledged (${report.duplicateAcks} as duplicates of a retry), ` +
        `${report.deliveries} deliveries checked, ${report.received} (ack, subscriber) pairs, ` +
        `${report.subscribes} subscribes; all of ${victim.name}'s clients back in ${Math.round(reconnectMs)} ms`,
    );
  });

  it("the node restarted on its port gets new clients through nginx again, in the same channels", async () => {
    const { cluster, work } = suite;
    const restarted = await cluster.restart(0);
    assert.equal(restarted.name, "n1");
    // nginx tries it again once its fail_timeout has passed: new clients land on it.
    let fresh: NodeClient | undefined;
    for (let attempt = 0; attempt < 200 && fresh === undefined; attempt++) {
      const nc = nodeClient(cluster.realtimeUrl, `new${attempt}`);
      nc.client.connect();
      await until(() => nc.node !== undefined, 10_000, "a new client connected");
      if (nc.node === "n1") fresh = nc;
      else {
        nc.client.close();
        await sleep(50);
      }
    }
    assert.ok(fresh !== undefined, "no new client landed on the restarted node");
    const r = await fresh.client.publish(CHANNELS[0]!, { p: -1, seq: 0 });
    const listeners = work.subscribers.filter((c) => work.channelsOf(c).includes(CHANNELS[0]!));
    await until(
      () =>
        listeners.every((c) => {
          const pos = work.checker.position(c, CHANNELS[0]!);
          return pos?.offset === r.offset && pos.epoch === r.epoch;
        }),
      10_000,
      "the restarted node's publication everywhere",
    );
    assert.deepEqual(work.checker.errors, []);
    fresh.client.close();
  });
});
