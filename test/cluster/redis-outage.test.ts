/**
 * Redis goes away for a few seconds under load (DUPLEX_CLUSTER_CLIENTS subscribers, default 1000)
 * and comes back on the same port — empty, as a
 * Redis without persistence does after a restart. What must hold:
 *   - no false acknowledgement: every acknowledged publish is in the (new) history or was
 *     delivered; publishes made during the outage fail with 112 and the SDK retries them;
 *   - the nodes reconnect and resubscribe by themselves (no restart of any node);
 *   - subscribers never miss a publication silently: the old history is gone, so they are told
 *     `recovered: false` and start again in the new epoch, and receive everything after it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterSuite, sleep, until } from "./helpers.js";

const CLIENTS = Number(process.env.DUPLEX_CLUSTER_CLIENTS ?? 1000);
const CHANNELS = ["rooms:r0", "rooms:r1", "rooms:r2", "rooms:r3"];
const OUTAGE_MS = 3000;

describe(`cluster: a Redis outage and restart without data, ${CLIENTS} clients`, () => {
  const suite = clusterSuite({ nodes: 3 });

  it("no false ack; nodes resubscribe; every gap is reported as recovered:false", async (t) => {
    const { cluster } = suite;
    const work = suite.workload({
      clients: CLIENTS,
      channels: CHANNELS,
      publishers: 3,
      publishPauseMs: 20,
      maxReconnectDelayMs: 1000,
    });
    await work.connect();
    const pids = cluster.nodes.map((n) => n.pid);
    const before = await work.tops();
    work.startPublishing();
    await until(() => work.acks.length >= 60, 30_000, "publishes before the outage");

    await cluster.stopRedis();
    const acksAtStop = work.acks.length;
    await sleep(OUTAGE_MS);
    const duringOutage = work.acks.length - acksAtStop;
    await cluster.startRedis();

    // Publishing resumes through the same nodes (no node was restarted).
    await until(() => work.acks.length >= acksAtStop + 60, 30_000, "publishes after Redis is back");
    await work.stopPublishing();
    const tops = await work.converge(30_000);
    assert.deepEqual(
      cluster.nodes.map((n) => n.pid),
      pids,
    );
    assert.ok(cluster.nodes.every((n) => n.running));

    const report = await work.verify();
    assert.deepEqual(work.checker.errors, [], "order, gaps, duplicates, content");
    assert.deepEqual(work.publishErrors, [], "the SDK retried every publish until it was stored");
    assert.equal(report.falseAcks, 0, "acknowledged but stored nowhere");
    assert.equal(report.silent, 0, "missed without recovered:false");
    assert.equal(report.doubled, 0, "a retried publish stored twice in one epoch");
    // Redis came back empty: every channel has a new epoch, and every subscriber was told.
    for (const ch of CHANNELS) assert.notEqual(tops.get(ch)!.epoch, before.get(ch)!.epoch, ch);
    assert.ok(report.unrecovered >= CLIENTS, `${report.unrecovered} recovered:false`);
    // Acks of the new epoch reached every subscriber of their channel, except those published
    // before that subscriber's recovered:false reply (which starts it at the top of the new
    // epoch: the application reloads what it needs from history).
    const fresh = work.acks.filter((a) => a.epoch === tops.get(a.channel)!.epoch);
    let freshMissed = 0;
    for (const a of fresh) {
      const c = work.checker.coverage(a.channel, a);
      assert.equal(c.received + c.told, work.subscribersOf(a.channel), JSON.stringify(a));
      freshMissed += c.told;
    }
    assert.ok(fresh.length > 0);
    t.diagnostic(
      `Redis outage ${OUTAGE_MS} ms then restart without data: ${report.acks} publishes acknowledged ` +
        `(${duringOutage} during the outage, ${fresh.length} in the new epochs), false acks ` +
        `${report.falseAcks}; ${report.deliveries} deliveries checked; ${report.unrecovered} ` +
        `recovered:false reported; ${report.told} (ack, subscriber) pairs missed with ` +
        `recovered:false (${freshMissed} of them in the new epoch), ${report.silent} silently`,
    );
  });
});
