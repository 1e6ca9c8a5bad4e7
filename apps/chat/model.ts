/**
 * The chat's data: what travels on its channels, what is kept in localStorage, and the checks
 * applied to everything that comes from the network or a text field.
 */
import type { ClientInfo } from "../../src/realtime/client/index.js";
import { safeColour } from "../shared/colour.js";

/** A chat message on `chat:<room>`. */
export interface ChatMessage {
  readonly text: string;
}

/** A typing signal on `typing:<room>` (ephemeral). */
export interface TypingSignal {
  readonly typing: true;
}

/** A room announcement on `rooms:index`. */
export interface RoomAnnouncement {
  readonly name: string;
}

export const DEFAULT_ROOM = "lobby";
export const MAX_TEXT = 2000;
export const MAX_NAME = 32;
export const HISTORY_LIMIT = 50;
/** Typing signals: at most one per this while the input changes (the server allows 2/s). */
export const TYPING_SEND_MS = 1500;
/** A typing indicator stays this long after the last signal. */
export const TYPING_SHOW_MS = 3000;

export const chatChannel = (room: string): string => `chat:${room}`;
export const typingChannel = (room: string): string => `typing:${room}`;
export const ROOMS_INDEX = "rooms:index";

export const STORAGE = {
  nickname: "duplex.chat.nickname",
  rooms: "duplex.chat.rooms",
  active: "duplex.chat.active",
} as const;

const ROOM_NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** A room name (1–32 letters, digits, - or _), lower-cased; undefined when invalid. */
export function roomName(input: unknown): string | undefined {
  if (typeof input !== "string") return undefined;
  const name = input.trim();
  return ROOM_NAME.test(name) ? name.toLowerCase() : undefined;
}

/** A nickname as the server accepts it: 1–32 characters, trimmed, no control characters. */
export function nickname(input: unknown): string | undefined {
  if (typeof input !== "string") return undefined;
  const name = input.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (name.length < 1 || name.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(name)) {
    return undefined;
  }
  return name;
}

/** The text of a chat message (1–2000 characters), or undefined for anything else. */
export function messageText(data: unknown): string | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const text = (data as { text?: unknown }).text;
  if (typeof text !== "string" || text.length < 1 || text.length > MAX_TEXT) return undefined;
  return text;
}

/** What the composer may send: the text when it has something besides blanks and fits. */
export function outgoingText(input: string): string | undefined {
  const text = input.trim();
  if (text === "" || text.length > MAX_TEXT) return undefined;
  return text;
}

/** Who published something, as the UI shows them. */
export interface Person {
  /** The user id (the nickname for anonymous connections). */
  readonly user: string;
  readonly client: string;
  readonly name: string;
  readonly colour: string;
}

export function personOf(from: ClientInfo | undefined): Person {
  const info = (from?.info ?? {}) as { name?: unknown; colour?: unknown };
  const user = from?.user ?? "";
  const name = typeof info.name === "string" && info.name !== "" ? info.name : user || "someone";
  return { user, client: from?.client ?? "", name, colour: safeColour(info.colour, name) };
}

/** "14:03" in the reader's locale (and the full date for the tooltip). */
export function formatTime(time: number | undefined): { short: string; full: string; iso: string } {
  const date = new Date(time ?? Date.now());
  return {
    short: date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    full: date.toLocaleString(),
    iso: date.toISOString(),
  };
}
