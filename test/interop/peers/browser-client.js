// Runs inside headless Chromium, in the page test/interop/browser.test.ts serves. It drives the
// browser's native WebSocket against our server and returns plain JSON results of what the
// browser observed; the test asserts them. Nothing here runs in Node.

const MiB = 1024 * 1024;

function connect(url, protocols) {
  const ws = new WebSocket(url, protocols);
  const inbox = [];
  const waiting = [];
  const events = [];
  ws.addEventListener("message", (event) => {
    const w = waiting.shift();
    if (w !== undefined) w(event.data);
    else inbox.push(event.data);
  });
  ws.addEventListener("error", () => events.push("error"));
  const closed = new Promise((resolve) => {
    ws.addEventListener("close", (event) => {
      resolve({
        code: event.code,
        reason: event.reason,
        wasClean: event.wasClean,
        before: [...events],
        isCloseEvent: event instanceof CloseEvent,
      });
    });
  });
  const opened = new Promise((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("error before open")));
  });
  const next = () =>
    inbox.length > 0
      ? Promise.resolve(inbox.shift())
      : new Promise((resolve) => waiting.push(resolve));
  return { ws, opened, closed, next };
}

/** Deterministic bytes that do not compress (xorshift32), like noise() in test/interop/helpers.ts. */
function noise(size, seed) {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function describeMessage(data) {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return { binary: typeof data !== "string", size: bytes.length, sha256: await sha256(bytes) };
}

/** Text messages, subprotocol and extensions, ordered messages, then our close. */
async function textSession(url, closeReason) {
  const c = connect(url, ["chat.v2", "chat.v1"]);
  await c.opened;
  const out = {
    protocol: c.ws.protocol,
    extensions: c.ws.extensions,
    echoes: {},
    sent: [],
    ordered: false,
  };
  const big = "ab😀ç漢 {json: [1, 2, 3]}\n".repeat(Math.ceil(MiB / 32));
  const texts = [
    ["ascii", "hello from chromium"],
    ["emoji", "héllo — 😀🎉 ✓ 漢字 𝄞"],
    ["empty", ""],
    ["1 MiB text", big.slice(0, MiB)],
  ];
  for (const [name, text] of texts) {
    out.sent.push(await describeMessage(text));
    c.ws.send(text);
    out.echoes[name] = (await c.next()) === text;
  }
  const ordered = Array.from({ length: 1000 }, (_, i) => `ordered-${i}`);
  for (const m of ordered) {
    out.sent.push(await describeMessage(m));
    c.ws.send(m);
  }
  const replies = [];
  for (let i = 0; i < ordered.length; i++) replies.push(await c.next());
  out.ordered = replies.every((r, i) => r === ordered[i]);
  c.ws.close(4000, closeReason);
  out.close = await c.closed;
  return out;
}

/** Binary messages of each size, sent as ArrayBuffer and as Blob, each echo checked. */
async function binarySession(url, sizes) {
  const c = connect(url);
  await c.opened;
  const results = [];
  const sent = [];
  for (const size of sizes) {
    const bytes = noise(size, size + 1);
    for (const kind of ["ArrayBuffer", "Blob"]) {
      sent.push(await describeMessage(bytes));
      const started = performance.now();
      let echo;
      if (kind === "ArrayBuffer") {
        c.ws.binaryType = "arraybuffer";
        c.ws.send(bytes.slice().buffer);
        echo = new Uint8Array(await c.next());
      } else {
        c.ws.binaryType = "blob";
        c.ws.send(new Blob([bytes]));
        const blob = await c.next();
        echo = blob instanceof Blob ? new Uint8Array(await blob.arrayBuffer()) : null;
      }
      results.push({
        kind,
        size,
        ok: echo !== null && equalBytes(echo, bytes),
        ms: Math.round(performance.now() - started),
      });
    }
  }
  c.ws.close(1000);
  const close = await c.closed;
  return { results, sent, close };
}

/** The server closes right after the handshake; returns the CloseEvent as the page saw it. */
async function serverCloseSession(url) {
  const c = connect(url);
  return await c.closed;
}

/** A handshake the server refuses: the events the page sees. */
async function refusedSession(url) {
  const c = connect(url);
  c.opened.catch(() => {});
  return await c.closed;
}

globalThis.interop = { textSession, binarySession, serverCloseSession, refusedSession };
