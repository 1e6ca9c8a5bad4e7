/**
 * Duplex chat: nickname, rooms (the shared `rooms:index` list plus `lobby`), joined rooms with
 * history, presence, typing indicators, unread counts and delivery ticks, and a connection
 * badge. Plain DOM; the realtime client SDK is bundled in.
 */
import {
  type ConnectionState,
  RealtimeClient,
  type Subscription,
} from "../../src/realtime/client/index.js";
import { showConnection } from "../shared/connection.js";
import { realtimeUrl } from "../shared/dom.js";
import { isString, isStringArray, loadJson, saveJson } from "../shared/storage.js";
import { ui } from "./elements.js";
import { Layout } from "./layout.js";
import {
  DEFAULT_ROOM,
  MAX_TEXT,
  nickname,
  outgoingText,
  ROOMS_INDEX,
  type RoomAnnouncement,
  roomName,
  STORAGE,
} from "./model.js";
import { askNickname } from "./nickname.js";
import { renderPresence } from "./presence.js";
import { Room, type RoomHost } from "./room.js";
import { RoomList } from "./sidebar.js";
import { typingText } from "./typing.js";

class ChatApp implements RoomHost {
  client: RealtimeClient;
  me: string;
  readonly #rooms = new Map<string, Room>();
  readonly #known = new Set<string>([DEFAULT_ROOM]);
  #active: string | undefined;
  readonly #list: RoomList;
  readonly #layout = new Layout(ui.log);

  constructor(name: string) {
    this.me = name;
    this.client = this.#connect(name);
    this.#list = new RoomList(ui.roomList, {
      open: (room) => {
        this.open(room);
        this.#layout.closeDrawers();
      },
      leave: (room) => this.leave(room),
    });
    const stored = loadJson(STORAGE.rooms, isStringArray) ?? [DEFAULT_ROOM];
    for (const r of stored) {
      const room = roomName(r);
      if (room !== undefined) this.#join(room);
    }
    const active = roomName(loadJson(STORAGE.active, isString));
    this.open(active !== undefined && this.#rooms.has(active) ? active : this.#firstJoined());
    this.client.connect();
  }

  /** A new nickname: a new connection (the server knows people by their connect data). */
  rename(name: string): void {
    if (name === this.me) return;
    const joined = [...this.#rooms.keys()];
    const active = this.#active;
    for (const room of this.#rooms.values()) room.dispose();
    this.#rooms.clear();
    this.client.close();
    this.me = name;
    this.client = this.#connect(name);
    for (const room of joined) this.#join(room);
    this.open(active);
    this.client.connect();
  }

  isActive(room: string): boolean {
    return room === this.#active;
  }

  changed(room: string, what: "unread" | "presence" | "typing" | "subscription"): void {
    if (what === "unread") this.#renderRooms();
    if (room !== this.#active) return;
    if (what === "presence") this.#renderPresence();
    if (what === "typing") this.#renderTyping();
  }

  sent(): void {
    this.#layout.scrollToEnd();
  }

  /** Open a room (joining it first if needed); undefined shows the "no room" state. */
  open(room: string | undefined): void {
    if (room !== undefined) this.#join(room);
    const r = room === undefined ? undefined : this.#rooms.get(room);
    this.#active = r?.name;
    if (r !== undefined) saveJson(STORAGE.active, r.name);
    ui.log.replaceChildren(...(r === undefined ? [] : [r.log.el]));
    ui.empty.hidden = r !== undefined;
    ui.title.textContent = r === undefined ? "No room" : `# ${r.name}`;
    ui.input.placeholder = r === undefined ? "Join a room to chat" : `Message #${r.name}`;
    ui.input.disabled = r === undefined;
    ui.send.disabled = r === undefined;
    r?.markRead();
    this.#layout.scrollToEnd();
    this.#renderRooms();
    this.#renderPresence();
    this.#renderTyping();
  }

  leave(room: string): void {
    const r = this.#rooms.get(room);
    if (r === undefined) return;
    r.dispose();
    this.#rooms.delete(room);
    this.#saveJoined();
    if (this.#active === room) this.open(this.#firstJoined());
    else this.#renderRooms();
  }

  /** Create (announce on rooms:index) and open a room; an error text when the name is bad. */
  create(input: string): string | undefined {
    const room = roomName(input);
    if (room === undefined) return "Use 1 to 32 letters, digits, - or _.";
    if (!this.#known.has(room)) {
      this.#known.add(room);
      this.client.publish<RoomAnnouncement>(ROOMS_INDEX, { name: room }).catch(() => {
        // the room still works; others just do not see it listed
      });
    }
    this.open(room);
    return undefined;
  }

  submit(): void {
    const room = this.#active === undefined ? undefined : this.#rooms.get(this.#active);
    const text = outgoingText(ui.input.value);
    if (room === undefined || text === undefined) return;
    room.send(text);
    ui.input.value = "";
    this.composerChanged();
  }

  composerChanged(): void {
    const length = ui.input.value.length;
    ui.count.textContent = length > MAX_TEXT - 200 ? `${length} / ${MAX_TEXT}` : "";
    const room = this.#active === undefined ? undefined : this.#rooms.get(this.#active);
    room?.typed(ui.input.value.trim() !== "");
  }

  #connect(name: string): RealtimeClient {
    ui.myName.textContent = name;
    const client = new RealtimeClient(realtimeUrl(), { data: { name }, name: "chat" });
    showConnection(ui.badge, "connecting");
    client.on("state", ({ state }) => {
      if (client === this.client) this.#showState(state);
    });
    const index = client.channel<RoomAnnouncement>(ROOMS_INDEX);
    index.on("publication", (p) => this.#learn(p.data));
    index.on("subscribed", () => void this.#loadIndex(client, index));
    index.subscribe();
    return client;
  }

  #showState(state: ConnectionState): void {
    showConnection(ui.badge, state);
    ui.retry.hidden = state !== "closed";
    // While not live, who is here (and who is typing) may be out of date: shown dimmed.
    ui.app.classList.toggle("stale", state !== "connected");
  }

  async #loadIndex(client: RealtimeClient, index: Subscription<RoomAnnouncement>): Promise<void> {
    try {
      const page = await index.history({ limit: 1000 });
      if (client !== this.client) return;
      for (const p of page.publications) this.#learn(p.data, false);
      this.#renderRooms();
    } catch {
      // the list fills from live announcements
    }
  }

  #learn(data: unknown, render = true): void {
    const room = roomName((data as { name?: unknown } | null)?.name);
    if (room === undefined || this.#known.has(room)) return;
    this.#known.add(room);
    if (render) this.#renderRooms();
  }

  #join(room: string): void {
    if (this.#rooms.has(room)) return;
    const r = new Room(this, room);
    this.#rooms.set(room, r);
    this.#known.add(room);
    r.start();
    this.#saveJoined();
  }

  #firstJoined(): string | undefined {
    return this.#rooms.keys().next().value;
  }

  #saveJoined(): void {
    saveJson(STORAGE.rooms, [...this.#rooms.keys()]);
  }

  #renderRooms(): void {
    const names = [...this.#known].sort((a, b) =>
      a === DEFAULT_ROOM ? -1 : b === DEFAULT_ROOM ? 1 : a.localeCompare(b),
    );
    let total = 0;
    this.#list.render(
      names.map((name) => {
        const r = this.#rooms.get(name);
        total += r?.unread ?? 0;
        return {
          name,
          joined: r !== undefined,
          active: name === this.#active,
          unread: r?.unread ?? 0,
        };
      }),
    );
    document.title = total > 0 ? `(${total}) Duplex chat` : "Duplex chat";
    ui.roomsUnread.textContent = total > 0 ? String(total) : "";
    ui.roomsUnread.hidden = total === 0;
  }

  #renderPresence(): void {
    const r = this.#active === undefined ? undefined : this.#rooms.get(this.#active);
    const users = r?.presence.users() ?? [];
    renderPresence(ui.presenceList, ui.presenceCount, users, this.me);
    ui.peopleCount.textContent = String(users.length);
  }

  #renderTyping(): void {
    const r = this.#active === undefined ? undefined : this.#rooms.get(this.#active);
    ui.typing.textContent = typingText(r?.typing.names() ?? []);
  }
}

async function main(): Promise<void> {
  let name = nickname(loadJson(STORAGE.nickname, isString));
  if (name === undefined) {
    name = (await askNickname(undefined)) ?? "guest";
    saveJson(STORAGE.nickname, name);
  }
  const app = new ChatApp(name);

  ui.changeName.addEventListener("click", async () => {
    const next = await askNickname(app.me);
    if (next === undefined || next === app.me) return;
    saveJson(STORAGE.nickname, next);
    app.rename(next);
  });
  ui.retry.addEventListener("click", () => app.client.connect());
  ui.newRoom.addEventListener("submit", (event) => {
    event.preventDefault();
    const error = app.create(ui.newRoomName.value);
    ui.newRoomError.textContent = error ?? "";
    if (error === undefined) {
      ui.newRoomName.value = "";
      ui.newRoomName.removeAttribute("aria-invalid");
    } else {
      ui.newRoomName.setAttribute("aria-invalid", "true");
    }
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    app.submit();
    ui.input.focus();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.input.addEventListener("input", () => app.composerChanged());
}

void main();
