/** The HTTP publish API: POST /api/publish with an API key, for backends that are not WS clients. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Peer, type Running, startRealtime } from "./helpers.js";

async function post(
  s: Running,
  body: unknown,
  headers: Record<string, string> = { authorization: "apikey k3y" },
  path = "/api/publish",
  method = "POST",
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${s.port}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(method === "GET" ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("realtime server: HTTP publish API", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({ apiKey: "k3y", namespaces: { chat: {} } });
  });
  after(() => s.close());

  it("publishes to subscribers and returns the offset; the idempotency key works here too", async () => {
    const { peer } = await Peer.connect(s.url);
    const sub = await peer.request({ type: "subscribe", channel: "chat:api" });
    const r = await post(s, { channel: "chat:api", data: { text: "from backend" }, key: "b-1" });
    assert.equal(r.status, 200);
    assert.equal(r.json.offset, sub.result.offset + 1);
    const again = await post(s, {
      channel: "chat:api",
      data: { text: "from backend" },
      key: "b-1",
    });
    assert.equal(again.json.duplicate, true);
    const pub = await peer.push((m) => m.type === "pub");
    assert.deepEqual(pub.data, { text: "from backend" });
    assert.equal(pub.from, undefined);
    await peer.request({ type: "ping" });
    assert.equal(peer.pubs("chat:api").length, 1);
    peer.close();
  });

  it("refuses a missing or wrong key (401), accepts X-API-Key", async () => {
    assert.equal((await post(s, { channel: "a", data: 1 }, {})).status, 401);
    assert.equal(
      (await post(s, { channel: "a", data: 1 }, { authorization: "apikey nope" })).status,
      401,
    );
    assert.equal((await post(s, { channel: "a", data: 1 }, { "x-api-key": "k3y" })).status, 200);
  });

  it("answers bad requests with clear statuses", async () => {
    assert.equal((await post(s, "{not json")).status, 400);
    assert.equal((await post(s, [1])).status, 400);
    assert.equal((await post(s, { channel: 5, data: 1 })).status, 400);
    assert.equal((await post(s, { channel: "nons:x", data: 1 })).status, 404);
    assert.equal((await post(s, { channel: "bad name", data: 1 })).status, 404);
    assert.equal((await post(s, { channel: "a", data: "x".repeat(70_000) })).status, 413);
    assert.equal((await post(s, { channel: "a", data: "x".repeat(1_100_000) })).status, 413);
    assert.equal((await post(s, null, undefined, "/api/publish", "GET")).status, 405);
    assert.equal((await post(s, {}, undefined, "/api/other")).status, 404);
  });

  it("is off (404) without an apiKey", async () => {
    const off = await startRealtime();
    try {
      const r = await post(off, { channel: "a", data: 1 });
      assert.equal(r.status, 404);
    } finally {
      await off.close();
    }
  });
});
