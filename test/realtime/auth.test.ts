import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from "jose";
import {
  AuthError,
  createJwtVerifier,
  type Grant,
  isGranted,
  type JwtOptions,
  matchChannel,
} from "../../src/realtime/auth.js";
import { ErrorCode } from "../../src/realtime/codes.js";

const SECRET = "a-test-secret-that-is-long-enough-for-hs256!";
const secretKey = new TextEncoder().encode(SECRET);
const nowSec = (): number => Math.floor(Date.now() / 1000);

function sign(
  claims: JWTPayload,
  key: CryptoKey | Uint8Array,
  alg = "HS256",
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(key);
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An unsecured JWT, built by hand: jose's SignJWT refuses to make one. */
function unsecured(claims: JWTPayload, signature = ""): string {
  return `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.${signature}`;
}

/** Await a rejection and check it is an AuthError with `code` that does not echo the token. */
async function rejects(
  promise: Promise<unknown>,
  code: number,
  token: string,
  message?: RegExp,
): Promise<AuthError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof AuthError, `expected an AuthError, got ${String(e)}`);
    assert.equal(e.code, code, `code ${e.code}: ${e.message}`);
    assert.equal(e.name, "AuthError");
    if (message !== undefined) assert.match(e.message, message);
    for (const part of token.split(".")) {
      if (part.length >= 8) assert.ok(!e.message.includes(part), "the message echoes the token");
    }
    return e;
  }
  assert.fail("expected a rejection");
}

const FULL_CHANNELS = {
  "chat:*": ["subscribe", "publish", "history", "presence"],
  news: ["subscribe"],
};

describe("createJwtVerifier: HMAC", () => {
  const verify = createJwtVerifier({ secret: SECRET });

  it("accepts a valid HS256 token and maps its claims", async () => {
    const exp = nowSec() + 600;
    const token = await sign(
      { sub: "alice", exp, info: { name: "Alice", tags: ["x", 1, null] }, channels: FULL_CHANNELS },
      secretKey,
    );
    const id = await verify(token);
    assert.deepEqual(id, {
      user: "alice",
      info: { name: "Alice", tags: ["x", 1, null] },
      grants: [
        { pattern: "chat:*", ops: ["subscribe", "publish", "history", "presence"] },
        { pattern: "news", ops: ["subscribe"] },
      ],
      expiresAt: exp * 1000,
    });
  });

  it("accepts HS384 and HS512 by default, and a Uint8Array secret", async () => {
    const v = createJwtVerifier({ secret: secretKey });
    for (const alg of ["HS384", "HS512"]) {
      const id = await v(await sign({ sub: "bob" }, secretKey, alg));
      assert.equal(id.user, "bob");
    }
  });

  it("leaves out info and expiresAt when the claims are absent; no channels → no grants", async () => {
    const id = await verify(await sign({ sub: "carol" }, secretKey));
    assert.deepEqual(id, { user: "carol", grants: [] });
    assert.ok(!("info" in id) && !("expiresAt" in id));
  });

  it("keeps a null info claim, and de-duplicates operations", async () => {
    const id = await verify(
      await sign({ sub: "d", info: null, channels: { a: ["publish", "publish"] } }, secretKey),
    );
    assert.equal(id.info, null);
    assert.deepEqual(id.grants, [{ pattern: "a", ops: ["publish"] }]);
  });

  it("refuses an expired token with 109", async () => {
    const token = await sign({ sub: "alice", exp: nowSec() - 60 }, secretKey);
    await rejects(verify(token), ErrorCode.TOKEN_EXPIRED, token, /expired/);
  });

  it("refuses a token that is not yet valid (nbf) with 101", async () => {
    const token = await sign({ sub: "alice", nbf: nowSec() + 60 }, secretKey);
    await rejects(verify(token), ErrorCode.UNAUTHORIZED, token, /not yet valid/);
  });

  it("refuses a token signed with another secret with 101", async () => {
    const token = await sign({ sub: "alice" }, new TextEncoder().encode("another secret"));
    await rejects(verify(token), ErrorCode.UNAUTHORIZED, token, /signature/);
  });

  it("checks the signature before the expiry", async () => {
    const token = await sign({ sub: "a", exp: nowSec() - 60 }, new TextEncoder().encode("other"));
    await rejects(verify(token), ErrorCode.UNAUTHORIZED, token);
  });

  it("checks issuer and audience when configured", async () => {
    const v = createJwtVerifier({ secret: SECRET, issuer: "https://idp", audience: "duplex" });
    const ok = await sign({ sub: "a", iss: "https://idp", aud: ["other", "duplex"] }, secretKey);
    assert.equal((await v(ok)).user, "a");
    const cases: [JWTPayload, RegExp][] = [
      [{ sub: "a", iss: "https://evil", aud: "duplex" }, /issuer/],
      [{ sub: "a", iss: "https://idp", aud: "other" }, /audience/],
      [{ sub: "a", aud: "duplex" }, /"iss"/],
      [{ sub: "a", iss: "https://idp" }, /"aud"/],
    ];
    for (const [claims, message] of cases) {
      const token = await sign(claims, secretKey);
      await rejects(v(token), ErrorCode.UNAUTHORIZED, token, message);
    }
  });

  it("refuses an unsigned alg:none token with 101", async () => {
    for (const token of [
      unsecured({ sub: "mallory" }),
      unsecured({ sub: "mallory" }, b64url("x")),
      `${b64url({ alg: "NONE" })}.${b64url({ sub: "mallory" })}.`,
    ]) {
      await rejects(verify(token), ErrorCode.UNAUTHORIZED, token);
    }
  });

  it("refuses an algorithm outside the configured list", async () => {
    const v = createJwtVerifier({ secret: SECRET, algorithms: ["HS512"] });
    const token = await sign({ sub: "a" }, secretKey, "HS256");
    await rejects(v(token), ErrorCode.UNAUTHORIZED, token, /algorithm not allowed/);
  });

  it("requires sub: a non-empty string", async () => {
    for (const claims of [{}, { sub: "" }, { sub: 42 }, { sub: null }] as JWTPayload[]) {
      const token = await sign(claims, secretKey);
      await rejects(verify(token), ErrorCode.UNAUTHORIZED, token, /"sub"/);
    }
  });

  it("refuses bad channels claim shapes with 101 and a clear message", async () => {
    const bad: [unknown, RegExp][] = [
      [["chat:*"], /must be an object/],
      ["chat:*", /must be an object/],
      [null, /must be an object/],
      [42, /must be an object/],
      [{ "chat:*": "subscribe" }, /"chat:\*" is not an array/],
      [{ "chat:*": { subscribe: true } }, /not an array/],
      [{ "chat:*": ["subscribe", "admin"] }, /unknown operation "admin"/],
      [{ "chat:*": [1] }, /unknown operation number/],
      [{ "chat:*": [null] }, /unknown operation object/],
    ];
    for (const [channels, message] of bad) {
      const token = await sign({ sub: "a", channels }, secretKey);
      await rejects(verify(token), ErrorCode.UNAUTHORIZED, token, message);
    }
  });

  it("refuses malformed tokens with 101", async () => {
    const good = await sign({ sub: "a" }, secretKey);
    const [h, p, s] = good.split(".") as [string, string, string];
    for (const token of [
      "",
      "abc",
      "a.b.c",
      `${h}.${p}`,
      `${h}.${p}.${s}.x`,
      `${h}.${b64url([1, 2])}.${s}`,
      `${h}.!!!.${s}`,
    ]) {
      await rejects(verify(token), ErrorCode.UNAUTHORIZED, token);
    }
    const notObject = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).sign(secretKey);
    await rejects(verify(notObject), ErrorCode.UNAUTHORIZED, notObject);
  });

  it("respects the clock tolerance (default 5 s) for exp and nbf", async () => {
    const justExpired = await sign({ sub: "a", exp: nowSec() - 2 }, secretKey);
    assert.equal((await verify(justExpired)).user, "a");
    const strict = createJwtVerifier({ secret: SECRET, clockToleranceSec: 0 });
    await rejects(strict(justExpired), ErrorCode.TOKEN_EXPIRED, justExpired);

    const longExpired = await sign({ sub: "a", exp: nowSec() - 30 }, secretKey);
    await rejects(verify(longExpired), ErrorCode.TOKEN_EXPIRED, longExpired);
    const lenient = createJwtVerifier({ secret: SECRET, clockToleranceSec: 60 });
    assert.equal((await lenient(longExpired)).user, "a");

    const almostValid = await sign({ sub: "a", nbf: nowSec() + 2 }, secretKey);
    assert.equal((await verify(almostValid)).user, "a");
    await rejects(strict(almostValid), ErrorCode.UNAUTHORIZED, almostValid, /not yet valid/);
  });
});

describe("createJwtVerifier: public keys", () => {
  let rsa: { privateKey: CryptoKey; pem: string };
  let ec: { privateKey: CryptoKey; pem: string; jwk: Record<string, unknown> };

  before(async () => {
    const r = await generateKeyPair("RS256", { extractable: true });
    rsa = { privateKey: r.privateKey, pem: await exportSPKI(r.publicKey) };
    const e = await generateKeyPair("ES256", { extractable: true });
    ec = {
      privateKey: e.privateKey,
      pem: await exportSPKI(e.publicKey),
      jwk: { ...(await exportJWK(e.publicKey)) },
    };
  });

  it("accepts a valid RS256 token with a PEM SPKI key", async () => {
    const verify = createJwtVerifier({ publicKey: rsa.pem });
    const exp = nowSec() + 60;
    const token = await sign(
      { sub: "alice", exp, info: "pro", channels: { "room:*": ["presence"] } },
      rsa.privateKey,
      "RS256",
    );
    assert.deepEqual(await verify(token), {
      user: "alice",
      info: "pro",
      grants: [{ pattern: "room:*", ops: ["presence"] }],
      expiresAt: exp * 1000,
    });
  });

  it("accepts a valid ES256 token with a PEM SPKI key and with a JWK", async () => {
    const token = await sign({ sub: "bob", channels: FULL_CHANNELS }, ec.privateKey, "ES256");
    for (const publicKey of [ec.pem, ec.jwk]) {
      const verify = createJwtVerifier({ publicKey } as JwtOptions);
      const id = await verify(token);
      assert.equal(id.user, "bob");
      assert.equal(id.grants.length, 2);
    }
  });

  it("refuses a token signed by another key pair with 101", async () => {
    const other = await generateKeyPair("ES256");
    const token = await sign({ sub: "a" }, other.privateKey, "ES256");
    await rejects(createJwtVerifier({ publicKey: ec.pem })(token), ErrorCode.UNAUTHORIZED, token);
  });

  it("refuses an expired RS256 token with 109", async () => {
    const token = await sign({ sub: "a", exp: nowSec() - 60 }, rsa.privateKey, "RS256");
    const verify = createJwtVerifier({ publicKey: rsa.pem });
    await rejects(verify(token), ErrorCode.TOKEN_EXPIRED, token);
  });

  it("refuses algorithm confusion: an HS256 token keyed with the public key", async () => {
    const verify = createJwtVerifier({ publicKey: rsa.pem, algorithms: ["RS256"] });
    for (const keyText of [rsa.pem, rsa.pem.trim()]) {
      const token = await sign({ sub: "mallory" }, new TextEncoder().encode(keyText), "HS256");
      await rejects(verify(token), ErrorCode.UNAUTHORIZED, token, /algorithm not allowed/);
    }
    // Also with the default list, which has no HMAC algorithm.
    const token = await sign({ sub: "mallory" }, new TextEncoder().encode(rsa.pem), "HS256");
    await rejects(createJwtVerifier({ publicKey: rsa.pem })(token), ErrorCode.UNAUTHORIZED, token);
  });

  it("refuses an unsigned alg:none token with 101", async () => {
    const token = unsecured({ sub: "mallory" });
    await rejects(createJwtVerifier({ publicKey: rsa.pem })(token), ErrorCode.UNAUTHORIZED, token);
  });

  it("refuses an allowed algorithm that does not fit the key with 101", async () => {
    // ES256 is allowed by default, but the configured key is RSA.
    const token = await sign({ sub: "a" }, ec.privateKey, "ES256");
    await rejects(createJwtVerifier({ publicKey: rsa.pem })(token), ErrorCode.UNAUTHORIZED, token);
    // A JWK that names its algorithm only verifies that algorithm.
    const v = createJwtVerifier({ publicKey: { ...ec.jwk, alg: "ES256" } } as JwtOptions);
    const ps = await generateKeyPair("PS256");
    const psToken = await sign({ sub: "a" }, ps.privateKey, "PS256");
    await rejects(v(psToken), ErrorCode.UNAUTHORIZED, psToken);
  });
});

describe("createJwtVerifier: options", () => {
  it("needs exactly one of secret and publicKey", () => {
    assert.throws(() => createJwtVerifier({}), TypeError);
    assert.throws(() => createJwtVerifier({ secret: SECRET, publicKey: "x" }), TypeError);
  });

  it("refuses unusable options at once", () => {
    const bad: JwtOptions[] = [
      { secret: "" },
      { secret: new Uint8Array(0) },
      { secret: SECRET, algorithms: [] },
      { secret: SECRET, algorithms: ["none"] },
      { secret: SECRET, algorithms: ["RS256"] },
      { secret: SECRET, clockToleranceSec: -1 },
      { secret: SECRET, clockToleranceSec: Number.NaN },
      { publicKey: "not a pem" },
      {
        publicKey: "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----",
        algorithms: ["HS256"],
      },
      { publicKey: { kty: "oct", k: "c2VjcmV0" } },
      { publicKey: { kty: "EC", crv: "P-256", x: "x", y: "y", d: "d" } },
    ];
    for (const options of bad) {
      assert.throws(() => createJwtVerifier(options), TypeError, JSON.stringify(options));
    }
  });
});

describe("AuthError", () => {
  it("is an Error with a code", () => {
    const e = new AuthError(ErrorCode.TOKEN_EXPIRED, "token expired");
    assert.ok(e instanceof Error);
    assert.equal(e.code, 109);
    assert.equal(e.name, "AuthError");
    assert.equal(e.message, "token expired");
  });
});

describe("matchChannel", () => {
  const cases: [string, string, boolean][] = [
    ["news", "news", true],
    ["news", "news2", false],
    ["news", "new", false],
    ["news", "News", false],
    ["*", "anything:at:all", true],
    ["*", "", true],
    ["**", "", true],
    ["*", "x", true],
    ["chat:*", "chat:lobby", true],
    ["chat:*", "chat:", true],
    ["chat:*", "chat:a:b", true],
    ["chat:*", "chat", false],
    ["chat:*", "xchat:lobby", false],
    ["a*b", "ab", true],
    ["a*b", "a:x:b", true],
    ["a*b", "a:x:bc", false],
    ["a*b", "ba", false],
    ["a*b*c", "abc", true],
    ["a*b*c", "a1b2c", true],
    ["a*b*c", "acb", false],
    ["*:*", "user:42", true],
    ["*:*", "user42", false],
    ["*a*", "bab", true],
    ["*ab", "aab", true],
    ["*aab", "aaab", true],
    ["a**b", "ab", true],
    ["", "", true],
    ["", "a", false],
    ["a", "", false],
    ["a*", "", false],
  ];
  for (const [pattern, channel, expected] of cases) {
    it(`${JSON.stringify(pattern)} ~ ${JSON.stringify(channel)} → ${expected}`, () => {
      assert.equal(matchChannel(pattern, channel), expected);
    });
  }

  /** The reference: the pattern escaped into an anchored RegExp, `*` becoming `.*`. */
  function reference(pattern: string, channel: string): boolean {
    const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    return new RegExp(`^${pattern.split("*").map(escapeRe).join(".*")}$`, "s").test(channel);
  }

  it("agrees with a RegExp reference (property)", () => {
    const unit = fc.constantFrom("a", "b", ":", "*", ".");
    fc.assert(
      fc.property(
        fc.string({ unit, maxLength: 12 }),
        fc.string({ unit, maxLength: 16 }),
        (pattern, channel) => {
          assert.equal(matchChannel(pattern, channel), reference(pattern, channel));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("agrees with the reference on channels built to match (property)", () => {
    const literal = fc.string({ unit: fc.constantFrom("a", "b", ":"), maxLength: 4 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(literal, literal), { maxLength: 5 }),
        literal,
        (parts, tail) => {
          const pattern = `${parts.map(([lit]) => lit).join("*")}*${tail}`;
          const channel = `${parts.map(([lit, filler]) => lit + filler).join("")}${tail}`;
          assert.equal(matchChannel(pattern, channel), true);
          assert.equal(reference(pattern, channel), true);
        },
      ),
    );
  });

  it("finishes on a pathological pattern (no exponential backtracking)", () => {
    const channel = "a".repeat(10_000);
    assert.equal(matchChannel("*a*a*a*a*a*a*a*b", channel), false);
    assert.equal(matchChannel("*a*a*a*a*a*a*a*a", channel), true);
    assert.equal(matchChannel(`${"*a".repeat(200)}*b`, channel), false);
  });
});

describe("isGranted", () => {
  const grants: Grant[] = [
    { pattern: "chat:*", ops: ["subscribe", "publish", "history", "presence"] },
    { pattern: "news", ops: ["subscribe"] },
    { pattern: "user:alice:*", ops: ["publish"] },
  ];

  it("allows an operation a matching grant lists", () => {
    assert.equal(isGranted(grants, "publish", "chat:lobby"), true);
    assert.equal(isGranted(grants, "presence", "chat:lobby"), true);
    assert.equal(isGranted(grants, "subscribe", "news"), true);
    assert.equal(isGranted(grants, "publish", "user:alice:inbox"), true);
  });

  it("refuses an operation no matching grant lists", () => {
    assert.equal(isGranted(grants, "publish", "news"), false);
    assert.equal(isGranted(grants, "history", "news"), false);
    assert.equal(isGranted(grants, "subscribe", "user:alice:inbox"), false);
  });

  it("refuses a channel no grant matches", () => {
    assert.equal(isGranted(grants, "subscribe", "news:sport"), false);
    assert.equal(isGranted(grants, "publish", "user:bob:inbox"), false);
    assert.equal(isGranted(grants, "subscribe", "chat"), false);
  });

  it("grants nothing with no grants, and combines grants for the same channel", () => {
    assert.equal(isGranted([], "subscribe", "news"), false);
    const split: Grant[] = [
      { pattern: "a:*", ops: ["subscribe"] },
      { pattern: "*:b", ops: ["publish"] },
    ];
    assert.equal(isGranted(split, "subscribe", "a:b"), true);
    assert.equal(isGranted(split, "publish", "a:b"), true);
    assert.equal(isGranted(split, "history", "a:b"), false);
  });
});
