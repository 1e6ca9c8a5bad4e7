/**
 * The nickname of the cursors and stats pages, shared with the chat through localStorage
 * (`duplex.nickname`). It is stored as
 * JSON (a JSON string, like apps/shared/storage.ts writes); a plain string is read too, and so is
 * the chat's own key as a fallback. The server checks the name again (1 to 32 characters after
 * trimming, no control characters); this is the same rule, so the form can say no before a
 * round trip.
 */

export const NICKNAME_KEY = "duplex.nickname";
/** Where the chat keeps its nickname (JSON), read when NICKNAME_KEY has none. */
const CHAT_NICKNAME_KEY = "duplex.chat.nickname";

/** A stored value: a JSON string, or else the raw text. */
function decode(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === "string") return value;
  } catch {
    // not JSON: a plain string
  }
  return raw;
}

/** The trimmed nickname, or undefined when the server would refuse it. */
export function validNickname(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (trimmed.length < 1 || trimmed.length > 32 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    return undefined;
  }
  return trimmed;
}

/** The stored nickname when there is a valid one (storage may be unavailable: undefined). */
export function storedNickname(): string | undefined {
  try {
    return (
      validNickname(decode(localStorage.getItem(NICKNAME_KEY))) ??
      validNickname(decode(localStorage.getItem(CHAT_NICKNAME_KEY)))
    );
  } catch {
    return undefined;
  }
}

export function saveNickname(name: string): void {
  try {
    localStorage.setItem(NICKNAME_KEY, JSON.stringify(name));
  } catch {
    // Private mode or storage full: the name lasts for this page only.
  }
}
