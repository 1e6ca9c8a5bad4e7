/**
 * Authentication and channel authorization for the realtime layer (docs/auth.md).
 *
 * A connection proves who it is with a token in its `connect` command (and later `refresh`). The
 * hub turns the token into an {@link Identity}, either through the application's own
 * `authenticate` hook or through the built-in JWT verifier made by {@link createJwtVerifier}.
 * The identity carries the user, optional application info, an optional expiry and the grants:
 * which operations the connection may do on which channel patterns.
 *
 * Dependency: `jose` (JWS/JWT verification). It is zero-dependency, maintained, built on
 * WebCrypto (so it runs in Node and browsers alike), refuses unsecured `alg: none` tokens in
 * `jwtVerify`, and enforces an algorithm allow-list, which is what keeps algorithm confusion out.
 * Writing JWS verification ourselves would be the riskier choice.
 */

import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  errors,
  importJWK,
  importSPKI,
  type JWK,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import { ErrorCode } from "./codes.js";
import type { Json } from "./wire.js";

/** What a grant may allow on a channel. */
export type Operation = "subscribe" | "publish" | "history" | "presence";

const OPERATIONS: ReadonlySet<string> = new Set<Operation>([
  "subscribe",
  "publish",
  "history",
  "presence",
]);

/** Permission to do `ops` on every channel that matches `pattern` (see {@link matchChannel}). */
export interface Grant {
  readonly pattern: string;
  readonly ops: readonly Operation[];
}

/** Who a connection is, as established from its token. */
export interface Identity {
  readonly user: string;
  /** Application data about the user, shown to others in presence and publications. */
  readonly info?: Json;
  readonly grants: readonly Grant[];
  /** When the token expires, in ms since the epoch. Absent: it does not. */
  readonly expiresAt?: number;
}

const STAR = 0x2a; // "*"

/**
 * Whether `channel` matches `pattern`. `*` matches any run of characters, possibly empty and
 * including `:`; every other character matches only itself. There is no escape: a pattern cannot
 * match a literal `*` only (channel names cannot contain one anyway).
 *
 * The classic greedy two-pointer wildcard algorithm: on a mismatch it goes back only to the most
 * recent `*`, never further, so there is no exponential backtracking and no RegExp is built from
 * the pattern. Time is O(|pattern| × |channel|) in the worst case and O(|channel|) when the
 * literal runs between stars are short; memory is O(1).
 */
export function matchChannel(pattern: string, channel: string): boolean {
  let p = 0;
  let c = 0;
  let star = -1; // index in `pattern` of the last `*` seen
  let resume = 0; // index in `channel` that this `*` currently stretches to
  while (c < channel.length) {
    if (p < pattern.length && pattern.charCodeAt(p) === STAR) {
      star = p++;
      resume = c;
    } else if (p < pattern.length && pattern.charCodeAt(p) === channel.charCodeAt(c)) {
      p++;
      c++;
    } else if (star >= 0) {
      // Let the last `*` swallow one more character and retry the literal run after it.
      p = star + 1;
      c = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === STAR) p++;
  return p === pattern.length;
}

/** Whether any grant allows `op` on `channel`. */
/**
 * Call `expired` once the time `expiresAt` (ms since the epoch; a token's) has passed; never
 * when undefined. setTimeout holds at most ~24.8 days: a later expiry is re-armed when that
 * fires. Returns what cancels it.
 */
export function onExpiry(expiresAt: number | undefined, expired: () => void): () => void {
  if (expiresAt === undefined) return () => undefined;
  let timer: ReturnType<typeof setTimeout>;
  const arm = (): void => {
    const delay = Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1);
    timer = setTimeout(() => (Date.now() >= expiresAt ? expired() : arm()), delay);
    timer.unref?.();
  };
  arm();
  return () => clearTimeout(timer);
}

export function isGranted(grants: readonly Grant[], op: Operation, channel: string): boolean {
  for (const grant of grants) {
    if (grant.ops.includes(op) && matchChannel(grant.pattern, channel)) return true;
  }
  return false;
}

/** The codes an {@link AuthError} can carry. */
export type AuthErrorCode = typeof ErrorCode.UNAUTHORIZED | typeof ErrorCode.TOKEN_EXPIRED;

/**
 * A token was refused: `code` is {@link ErrorCode.UNAUTHORIZED} (101) or
 * {@link ErrorCode.TOKEN_EXPIRED} (109). The message says why; it never contains the token.
 */
export class AuthError extends Error {
  readonly code: AuthErrorCode;

  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

/** Options of {@link createJwtVerifier}. Give exactly one of `secret` and `publicKey`. */
export interface JwtOptions {
  /** HMAC secret (HS256/HS384/HS512). A string is taken as its UTF-8 bytes. */
  readonly secret?: string | Uint8Array;
  /** Public key for RSA, ECDSA or EdDSA signatures: a PEM SPKI (`-----BEGIN PUBLIC KEY-----`) or a public JWK. */
  readonly publicKey?: string | JWK;
  /**
   * The accepted `alg` values. Default: `["HS256", "HS384", "HS512"]` with `secret`,
   * `["RS256", "ES256", "EdDSA", "PS256"]` with `publicKey`. `none` is never accepted, and HMAC
   * algorithms are accepted only with `secret`.
   */
  readonly algorithms?: readonly string[];
  /** Required value of the `iss` claim. */
  readonly issuer?: string;
  /** Required value (or one of the values) of the `aud` claim. */
  readonly audience?: string;
  /** Allowed clock skew for `exp` and `nbf`, in seconds. Default 5. */
  readonly clockToleranceSec?: number;
}

const HMAC_ALGORITHMS: readonly string[] = ["HS256", "HS384", "HS512"];
const DEFAULT_PUBLIC_KEY_ALGORITHMS: readonly string[] = ["RS256", "ES256", "EdDSA", "PS256"];
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;

type KeyResolver = (header: CompactJWSHeaderParameters) => Promise<CryptoKey | Uint8Array>;

/**
 * Make a function that verifies a JWT and returns the {@link Identity} it describes, or rejects
 * with an {@link AuthError}: 109 when the token has expired, 101 for anything else (bad
 * signature, disallowed algorithm, `nbf` in the future, wrong issuer or audience, missing `sub`,
 * malformed `channels`, not a JWT at all).
 *
 * Claims: `sub` (string, required) → `user`; `exp` (optional) → `expiresAt`; `info` (any JSON,
 * optional) → `info`; `channels` (optional) → `grants`, an object mapping channel patterns to
 * arrays of operations, e.g. `{"chat:*": ["subscribe", "publish"], "news": ["subscribe"]}`.
 *
 * Throws a TypeError at once when the options are unusable.
 */
export function createJwtVerifier(options: JwtOptions): (token: string) => Promise<Identity> {
  const { secret, publicKey } = options;
  if ((secret === undefined) === (publicKey === undefined)) {
    throw new TypeError("createJwtVerifier needs exactly one of `secret` and `publicKey`");
  }
  const clockTolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new TypeError("`clockToleranceSec` must be a finite number >= 0");
  }
  if (options.issuer !== undefined && typeof options.issuer !== "string") {
    throw new TypeError("`issuer` must be a string");
  }
  if (options.audience !== undefined && typeof options.audience !== "string") {
    throw new TypeError("`audience` must be a string");
  }

  let algorithms: string[];
  let key: Uint8Array | KeyResolver;
  if (secret !== undefined) {
    algorithms = checkAlgorithms(options.algorithms ?? HMAC_ALGORITHMS, true);
    key = secretBytes(secret);
  } else {
    algorithms = checkAlgorithms(options.algorithms ?? DEFAULT_PUBLIC_KEY_ALGORITHMS, false);
    key = publicKeyResolver(publicKey as string | JWK);
  }

  const verifyOptions: JWTVerifyOptions = {
    algorithms,
    clockTolerance,
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(options.audience !== undefined ? { audience: options.audience } : {}),
  };

  return async (token: string): Promise<Identity> => {
    if (typeof token !== "string" || token.length === 0) {
      throw new AuthError(ErrorCode.UNAUTHORIZED, "no token");
    }
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, key, verifyOptions)).payload;
    } catch (e) {
      throw toAuthError(e);
    }
    return identityFromClaims(payload);
  };
}

function checkAlgorithms(list: readonly string[], hmac: boolean): string[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError("`algorithms` must be a non-empty array of algorithm names");
  }
  for (const alg of list) {
    if (typeof alg !== "string" || alg.length === 0 || alg.toLowerCase() === "none") {
      throw new TypeError(`\`algorithms\` must not contain ${JSON.stringify(alg)}`);
    }
    if (hmac !== HMAC_ALGORITHMS.includes(alg)) {
      throw new TypeError(
        hmac
          ? `algorithm ${JSON.stringify(alg)} cannot be used with \`secret\` (HS256/HS384/HS512 only)`
          : `algorithm ${JSON.stringify(alg)} cannot be used with \`publicKey\` (HMAC needs \`secret\`)`,
      );
    }
  }
  return [...list];
}

function secretBytes(secret: string | Uint8Array): Uint8Array {
  if (typeof secret === "string") {
    if (secret.length === 0) throw new TypeError("`secret` must not be empty");
    return new TextEncoder().encode(secret);
  }
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new TypeError("`secret` must be a non-empty string or Uint8Array");
  }
  return new Uint8Array(secret); // a copy: later changes by the caller do not reach us
}

/**
 * A WebCrypto key is bound to one algorithm, so the public key is imported once per `alg` the
 * tokens use (only allowed ones reach here: jose checks the allow-list before asking for a key).
 */
function publicKeyResolver(publicKey: string | JWK): KeyResolver {
  let importKey: (alg: string) => Promise<CryptoKey | Uint8Array>;
  if (typeof publicKey === "string") {
    if (!publicKey.trimStart().startsWith("-----BEGIN PUBLIC KEY-----")) {
      throw new TypeError("`publicKey` must be a PEM SPKI (-----BEGIN PUBLIC KEY-----) or a JWK");
    }
    importKey = (alg) => importSPKI(publicKey, alg);
  } else {
    if (typeof publicKey !== "object" || publicKey === null || typeof publicKey.kty !== "string") {
      throw new TypeError("`publicKey` must be a PEM SPKI or a JWK");
    }
    if (publicKey.kty === "oct") {
      throw new TypeError("`publicKey` must be an asymmetric JWK; use `secret` for HMAC");
    }
    if ("d" in publicKey || "priv" in publicKey) {
      throw new TypeError("`publicKey` must not contain private key material");
    }
    const jwk = { ...publicKey };
    importKey = (alg) => {
      if (jwk.alg !== undefined && jwk.alg !== alg) {
        return Promise.reject(
          new AuthError(ErrorCode.UNAUTHORIZED, "token algorithm does not match the key"),
        );
      }
      return importJWK(jwk, alg);
    };
  }
  const imported = new Map<string, Promise<CryptoKey | Uint8Array>>();
  return (header) => {
    const alg = header.alg;
    let key = imported.get(alg);
    if (key === undefined) {
      key = importKey(alg);
      imported.set(alg, key);
    }
    return key;
  };
}

function toAuthError(e: unknown): AuthError {
  if (e instanceof AuthError) return e;
  if (e instanceof errors.JWTExpired) {
    return new AuthError(ErrorCode.TOKEN_EXPIRED, "token expired");
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    const claim = e.claim;
    if (claim === "nbf" && e.reason === "check_failed") {
      return new AuthError(ErrorCode.UNAUTHORIZED, "token not yet valid (nbf)");
    }
    if (e.reason === "missing") {
      return new AuthError(ErrorCode.UNAUTHORIZED, `token has no "${claim}" claim`);
    }
    if (claim === "iss") return new AuthError(ErrorCode.UNAUTHORIZED, "token issuer mismatch");
    if (claim === "aud") return new AuthError(ErrorCode.UNAUTHORIZED, "token audience mismatch");
    return new AuthError(ErrorCode.UNAUTHORIZED, `token "${claim}" claim is invalid`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError(ErrorCode.UNAUTHORIZED, "token algorithm not allowed");
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError(ErrorCode.UNAUTHORIZED, "token signature invalid");
  }
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) {
    return new AuthError(ErrorCode.UNAUTHORIZED, "malformed token");
  }
  if (e instanceof errors.JOSENotSupported) {
    return new AuthError(ErrorCode.UNAUTHORIZED, "token algorithm or key not supported");
  }
  // Anything else (e.g. the key does not fit the token's algorithm): a fixed message, since the
  // original one is not ours to vouch for.
  return new AuthError(ErrorCode.UNAUTHORIZED, "token verification failed");
}

function identityFromClaims(payload: JWTPayload): Identity {
  const { sub, exp } = payload;
  if (typeof sub !== "string" || sub.length === 0) {
    throw new AuthError(ErrorCode.UNAUTHORIZED, 'token needs a "sub" claim (a non-empty string)');
  }
  const info = payload.info as Json | undefined; // JSON.parse output: JSON by construction
  const grants = parseGrants(payload.channels);
  return {
    user: sub,
    ...(info !== undefined ? { info } : {}),
    grants,
    ...(exp !== undefined ? { expiresAt: exp * 1000 } : {}),
  };
}

const CHANNELS_SHAPE =
  'token "channels" claim must be an object mapping channel patterns to arrays of operations';

function parseGrants(channels: unknown): Grant[] {
  if (channels === undefined) return [];
  if (typeof channels !== "object" || channels === null || Array.isArray(channels)) {
    throw new AuthError(ErrorCode.UNAUTHORIZED, CHANNELS_SHAPE);
  }
  const grants: Grant[] = [];
  for (const [pattern, ops] of Object.entries(channels)) {
    if (!Array.isArray(ops)) {
      throw new AuthError(
        ErrorCode.UNAUTHORIZED,
        `${CHANNELS_SHAPE}: the value for ${quote(pattern)} is not an array`,
      );
    }
    const seen = new Set<Operation>();
    for (const op of ops) {
      if (typeof op !== "string" || !OPERATIONS.has(op)) {
        throw new AuthError(
          ErrorCode.UNAUTHORIZED,
          `token "channels" claim: unknown operation ${typeof op === "string" ? quote(op) : typeof op} for ${quote(pattern)} (allowed: subscribe, publish, history, presence)`,
        );
      }
      seen.add(op as Operation);
    }
    grants.push({ pattern, ops: [...seen] });
  }
  return grants;
}

/** JSON-quote a claim string for a message, cut to a readable length. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}
