/**
 * `Sec-WebSocket-Extensions` (RFC 6455 §9.1):
 *
 *     extension-list  = 1#extension
 *     extension       = extension-token *( ";" extension-param )
 *     extension-param = token [ "=" (token | quoted-string) ]
 *         ; a quoted-string value, once unescaped, MUST conform to the token ABNF
 *
 * OWS is accepted around ",", ";" and "=" (RFC 6455 relies on RFC 2616 implied *LWS).
 * Single forward pass over char codes; no regular expressions.
 */
import { HandshakeError, StateError } from "./errors.js";
import { describeChar, isToken, scanToken, skipOws } from "./subprotocol-header.js";

/** One element of the header: an extension name and its parameters. */
export interface ExtensionOffer {
  name: string;
  /**
   * Parameters by name, in header order. A parameter without `=value` maps to `true`.
   * Created with `Object.create(null)`: names such as `__proto__` or `constructor` are plain
   * own properties; read it with `Object.hasOwn` / `Object.keys`, never `in`.
   */
  params: Record<string, string | true>;
}

const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function fail(message: string): never {
  throw new HandshakeError(
    "WS_ERR_HANDSHAKE_EXTENSION",
    400,
    `Sec-WebSocket-Extensions: ${message}`,
  );
}

/** RFC 7230 §3.2.6 qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text. */
function isQdtext(code: number): boolean {
  return (
    code === 0x09 ||
    code === 0x20 ||
    code === 0x21 ||
    (code >= 0x23 && code <= 0x5b) ||
    (code >= 0x5d && code <= 0x7e) ||
    (code >= 0x80 && code <= 0xff)
  );
}

/** RFC 7230 §3.2.6 quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ). */
function isQuotedPairChar(code: number): boolean {
  return code === 0x09 || (code >= 0x20 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/** A fresh prototype-less parameter map. */
export function createParams(): Record<string, string | true> {
  return Object.create(null) as Record<string, string | true>;
}

/**
 * Parse a `Sec-WebSocket-Extensions` value (several header lines may be joined with ", ").
 * The same extension name may appear several times (RFC 7692 §5: alternative offers).
 *
 * Throws {@link HandshakeError} (400, `WS_ERR_HANDSHAKE_EXTENSION`) with the position of the
 * first problem: empty element, non-token name or value, unterminated quoted-string, a quoted
 * value that is not a token once unescaped, or the same parameter twice in one element.
 */
export function parseExtensions(value: string): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  const n = value.length;
  let i = 0;
  for (let element = 0; ; element++) {
    i = skipOws(value, i);
    let start = i;
    i = scanToken(value, i);
    if (i === start) {
      if (i === n || value.charCodeAt(i) === COMMA) {
        fail(`empty element at index ${element} (position ${i})`);
      }
      fail(`expected an extension name at position ${i}, got ${describeChar(value, i)}`);
    }
    const name = value.slice(start, i);
    const params = createParams();
    i = skipOws(value, i);
    while (i < n && value.charCodeAt(i) === SEMICOLON) {
      i = skipOws(value, i + 1);
      start = i;
      i = scanToken(value, i);
      if (i === start) {
        fail(`expected a parameter name at position ${i}, got ${describeChar(value, i)}`);
      }
      const paramName = value.slice(start, i);
      let paramValue: string | true = true;
      i = skipOws(value, i);
      if (i < n && value.charCodeAt(i) === EQUALS) {
        i = skipOws(value, i + 1);
        if (i < n && value.charCodeAt(i) === DQUOTE) {
          const quoteStart = i;
          let unescaped = "";
          let runStart = ++i;
          for (;;) {
            if (i >= n) fail(`unterminated quoted-string starting at position ${quoteStart}`);
            const code = value.charCodeAt(i);
            if (code === DQUOTE) {
              unescaped += value.slice(runStart, i);
              i++;
              break;
            }
            if (code === BACKSLASH) {
              unescaped += value.slice(runStart, i);
              i++;
              if (i >= n || !isQuotedPairChar(value.charCodeAt(i))) {
                fail(`invalid escape at position ${i - 1}`);
              }
              runStart = i; // the escaped character starts the next literal run
              i++;
              continue;
            }
            if (!isQdtext(code)) {
              fail(`invalid character ${describeChar(value, i)} in quoted-string at position ${i}`);
            }
            i++;
          }
          if (!isToken(unescaped)) {
            fail(`quoted value of parameter "${paramName}" is not a token (RFC 6455 §9.1)`);
          }
          paramValue = unescaped;
        } else {
          start = i;
          i = scanToken(value, i);
          if (i === start) {
            fail(`expected a parameter value at position ${i}, got ${describeChar(value, i)}`);
          }
          paramValue = value.slice(start, i);
        }
        i = skipOws(value, i);
      }
      if (Object.hasOwn(params, paramName)) {
        fail(`duplicate parameter "${paramName}" in element ${element} ("${name}")`);
      }
      params[paramName] = paramValue;
    }
    out.push({ name, params });
    if (i === n) return out;
    if (value.charCodeAt(i) !== COMMA) {
      fail(`unexpected ${describeChar(value, i)} at position ${i} in element ${element}`);
    }
    i++;
  }
}

/**
 * Serialize extension elements to a `Sec-WebSocket-Extensions` value, e.g.
 * `permessage-deflate; client_max_window_bits`. Values are always tokens, so they are written
 * unquoted. Throws {@link StateError} (`WS_ERR_INVALID_ARGUMENT`) if a name or value is not a
 * token: the caller built an offer that no peer could parse.
 */
export function formatExtensions(offers: readonly ExtensionOffer[]): string {
  const elements: string[] = [];
  for (const offer of offers) {
    if (!isToken(offer.name)) {
      throw new StateError("WS_ERR_INVALID_ARGUMENT", `Extension name is not a token`);
    }
    let element = offer.name;
    for (const key of Object.keys(offer.params)) {
      const value = offer.params[key];
      if (!isToken(key)) {
        throw new StateError("WS_ERR_INVALID_ARGUMENT", `Extension parameter name is not a token`);
      }
      if (value === true) {
        element += `; ${key}`;
      } else if (typeof value === "string" && isToken(value)) {
        element += `; ${key}=${value}`;
      } else {
        throw new StateError(
          "WS_ERR_INVALID_ARGUMENT",
          `Value of extension parameter "${key}" must be true or a token`,
        );
      }
    }
    elements.push(element);
  }
  return elements.join(", ");
}
