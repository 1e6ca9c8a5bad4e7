/**
 * Authentication and authorization on the realtime server: JWT at connect (codes 101/109 and
 * close codes 4501/4003), grants by channel pattern, namespace rules, in-band token refresh and
 * the expiry deadline, the authenticate hook.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { AuthError, DisconnectCode, ErrorCode } from "../../src/realtime/index.js";
import { Peer, type Running, startRealtime } from "./helpers.js";

const SECRET = "test-secret-that-is-long-enough-for-hs256";
const key = new TextEncoder().encode(SECRET);

function token(claims: Record<string, unknown>, expiresInSec = 3600): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (expiresInSec !== 0) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec);
  return jwt.sign(key);
}

describe("realtime server: JWT and grants", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      jwt: { secret: SECRET, clockToleranceSec: 0 },
      namespaces: {
        chat: {},
        admin: { subscribe: "grant", publish: "grant" },
        news: { publish: "grant" },
        open: { publish: "all", history: "all" },
        custom: { subscribe: ({ client, channel }) => channel === `custom:${client.user}` },
      },
    });
  });
  after(() => s.close());

  it("a valid token connects as its subject, with the expiry in the reply", async () => {
    const t = await token({ sub: "alice", info: { name: "Alice" } });
    const { peer, reply } = await Peer.connect(s.url, { token: t });
    assert.equal(reply.result.user, "alice");
    assert.equal(typeof reply.result.expires, "number");
    peer.close();
  });

  it("no token, a bad signature, or garbage: 101 then close 4501 (do not reconnect)", async () => {
    for (const t of [undefined, `${await token({ sub: "x" })}x`, "garbage"]) {
      const { peer, reply } = await Peer.connect(s.url, t === undefined ? {} : { token: t });
      assert.equal(reply.error.code, ErrorCode.UNAUTHORIZED);
      const closed = await peer.closed;
      assert.equal(closed.code, DisconnectCode.UNAUTHORIZED);
      const push = peer.pushes.find((m) => m.type === "disconnect");
      assert.equal(push?.reconnect, false);
    }
  });

  it("an expired token: 109 then close 4003 (reconnect with a new token)", async () => {
    const t = await token({ sub: "bob" }, -60);
    const { peer, reply } = await Peer.connect(s.url, { token: t });
    assert.equal(reply.error.code, ErrorCode.TOKEN_EXPIRED);
    assert.equal((await peer.closed).code, DisconnectCode.TOKEN_EXPIRED);
    assert.equal(peer.pushes.find((m) => m.type === "disconnect")?.reconnect, true);
  });

  it("namespace rules and grants decide, with 103 on denial", async () => {
    const plain = await Peer.connect(s.url, { token: await token({ sub: "u1" }) });
    const p = plain.peer;
    assert.equal((await p.request({ type: "subscribe", channel: "admin:ops" })).error.code, 103);
    assert.ok((await p.request({ type: "subscribe", channel: "news:today" })).result);
    assert.equal(
      (await p.request({ type: "publish", channel: "news:today", data: 1 })).error.code,
      103,
    );
    // "subscribers" rule: publish to chat only when subscribed.
    assert.equal(
      (await p.request({ type: "publish", channel: "chat:a", data: 1 })).error.code,
      103,
    );
    await p.request({ type: "subscribe", channel: "chat:a" });
    assert.ok((await p.request({ type: "publish", channel: "chat:a", data: 1 })).result);
    // "all" rule.
    assert.ok((await p.request({ type: "publish", channel: "open:x", data: 1 })).result);
    assert.ok((await p.request({ type: "history", channel: "open:x" })).result);
    // function rule.
    assert.ok((await p.request({ type: "subscribe", channel: "custom:u1" })).result);
    assert.equal((await p.request({ type: "subscribe", channel: "custom:u2" })).error.code, 103);
    p.close();

    const granted = await Peer.connect(s.url, {
      token: await token({
        sub: "ops",
        channels: { "admin:*": ["subscribe", "publish"], "news:*": ["publish"] },
      }),
    });
    const g = granted.peer;
    assert.ok((await g.request({ type: "subscribe", channel: "admin:ops" })).result);
    assert.ok((await g.request({ type: "publish", channel: "admin:ops", data: 1 })).result);
    assert.ok((await g.request({ type: "publish", channel: "news:today", data: 1 })).result);
    assert.equal((await g.request({ type: "history", channel: "admin:other" })).error.code, 103);
    g.close();
  });

  it("refresh extends the session in band; a token for another user is refused", async () => {
    const { peer } = await Peer.connect(s.url, { token: await token({ sub: "carol" }, 2) });
    const newer = await token({ sub: "carol" }, 3600);
    const r = await peer.request({ type: "refresh", token: newer });
    assert.ok(r.result.expires > Date.now() + 3_000_000);
    const other = await peer.request({ type: "refresh", token: await token({ sub: "mallory" }) });
    assert.equal(other.error.code, ErrorCode.PERMISSION_DENIED);
    // Still connected past the first token's expiry.
    await new Promise((resolve) => setTimeout(resolve, 2200));
    assert.deepEqual((await peer.request({ type: "ping" })).result, {});
    peer.close();
  });

  it("without a refresh the connection closes with 4003 when the token expires", async () => {
    const { peer } = await Peer.connect(s.url, { token: await token({ sub: "dave" }, 1) });
    const closed = await peer.closed;
    assert.equal(closed.code, DisconnectCode.TOKEN_EXPIRED);
  });
});

describe("realtime server: authenticate hook", () => {
  let s: Running;
  before(async () => {
    s = await startRealtime({
      authenticate: ({ data }) => {
        const name = (data as { name?: unknown } | undefined)?.name;
        if (typeof name !== "string") throw new AuthError(ErrorCode.UNAUTHORIZED, "name required");
        if (name === "long") throw new AuthError(ErrorCode.UNAUTHORIZED, "é".repeat(90));
        return { user: name, info: { name }, grants: [] };
      },
    });
  });
  after(() => s.close());

  it("its identity is used, and its AuthError refuses with the documented codes", async () => {
    const ok = await Peer.connect(s.url, { data: { name: "erin" } });
    assert.equal(ok.reply.result.user, "erin");
    ok.peer.close();
    const bad = await Peer.connect(s.url, { data: {} });
    assert.equal(bad.reply.error.code, ErrorCode.UNAUTHORIZED);
    assert.equal(bad.reply.error.message, "name required");
    assert.equal((await bad.peer.closed).code, DisconnectCode.UNAUTHORIZED);
  });

  it("a refusal whose message is longer than a Close reason allows still closes with its code", async () => {
    // 90 × "é" is 180 bytes of UTF-8: the Close reason is cut to at most 123 bytes on a
    // character boundary instead of failing the close (which would look like 1006).
    const bad = await Peer.connect(s.url, { data: { name: "long" } });
    assert.equal(bad.reply.error.message, "é".repeat(90));
    const closed = await bad.peer.closed;
    assert.equal(closed.code, DisconnectCode.UNAUTHORIZED);
    assert.ok(Buffer.byteLength(closed.reason) <= 123);
    assert.equal(closed.reason, "é".repeat(61));
  });
});
