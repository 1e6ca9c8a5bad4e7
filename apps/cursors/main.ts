/**
 * Live cursors: everyone on the page sees everyone else's pointer, with their name, in their
 * colour.
 *
 * One channel, `cursors:board` (namespace `cursors`: no history, presence with join/leave,
 * slow consumers get only the newest publication per conflation key). Each page publishes its
 * pointer position as `{x, y}` normalised to the board (0..1, so different window sizes agree),
 * at most once per animation frame (pointer events are coalesced into one publish of the latest
 * position) and with at most MAX_IN_FLIGHT publishes unacknowledged, conflated by its client id.
 *
 * Who is here comes from presence: a full query after each (re)subscribe, kept up to date with
 * join/leave events. A pointer disappears when its owner leaves, and fades after IDLE_MS without
 * movement. Names are rendered with textContent only.
 */
import {
  type ClientInfo,
  type Json,
  RealtimeClient,
  type Subscription,
} from "../../src/realtime/client/index.js";
import { subscriptionBadge } from "../shared/connection.js";
import { byId, h, realtimeUrl, svg } from "../shared/dom.js";
import { saveNickname, storedNickname, validNickname } from "../shared/nickname.js";

const CHANNEL = "cursors:board";
/** A pointer that has not moved for this long fades out. */
const IDLE_MS = 10_000;
/** Publishes awaiting their ack, at most; meanwhile only the newest position waits. */
const MAX_IN_FLIGHT = 4;
/** People listed by name in the panel, at most (the count is always exact). */
const MAX_LISTED = 30;
/** Client ids remembered as gone (late publications from them are ignored). */
const MAX_GONE = 1000;

/** A position on the board, both coordinates in 0..1. */
interface Point {
  readonly x: number;
  readonly y: number;
}

interface Person {
  readonly client: string;
  readonly name: string;
  /** A CSS colour, or "" when unknown. */
  readonly colour: string;
}

interface Cursor {
  readonly el: HTMLElement;
  point: Point;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
}

const board = byId("board");
const statusEl = byId("status");
const countEl = byId("count");
const peopleEl = byId("people");
const meLine = byId("me-line");
const meEl = byId("me");
const joinForm = byId<HTMLFormElement>("join");
const nicknameInput = byId<HTMLInputElement>("nickname");
const joinError = byId("join-error");
const joinCancel = byId("join-cancel");

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

/** `{x, y}` with finite numbers, clamped to the board; anything else is ignored. */
function pointOf(data: unknown): Point | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { x, y } = data as { x?: unknown; y?: unknown };
  if (typeof x !== "number" || typeof y !== "number") return undefined;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return undefined;
  return { x: clamp01(x), y: clamp01(y) };
}

/** Name and colour from the server's `info` ({name, colour}); the user id as a fallback. */
function personOf(member: ClientInfo): Person {
  const info: Json | undefined = member.info;
  const fields =
    typeof info === "object" && info !== null && !Array.isArray(info)
      ? (info as { readonly [k: string]: Json })
      : {};
  const name =
    typeof fields.name === "string" && fields.name !== ""
      ? fields.name
      : member.user !== ""
        ? member.user
        : "anonymous";
  const colour =
    typeof fields.colour === "string" && CSS.supports("color", fields.colour) ? fields.colour : "";
  return { client: member.client, name, colour };
}

function paint(el: HTMLElement, colour: string): void {
  if (colour === "") el.style.removeProperty("--colour");
  else el.style.setProperty("--colour", colour);
}

// ---- the join form ---------------------------------------------------------------------------

function askNickname(error?: string): void {
  nicknameInput.value = storedNickname() ?? "";
  joinError.hidden = error === undefined;
  joinError.textContent = error ?? "";
  joinCancel.hidden = !started;
  joinForm.hidden = false;
  nicknameInput.focus();
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = validNickname(nicknameInput.value);
  if (name === undefined) {
    joinError.textContent = "A nickname is 1 to 32 characters, without control characters.";
    joinError.hidden = false;
    return;
  }
  saveNickname(name);
  if (started) {
    // The nickname is sent when connecting: a new one needs a new connection.
    location.reload();
    return;
  }
  joinForm.hidden = true;
  start(name);
});

byId("rename").addEventListener("click", () => askNickname());
joinCancel.addEventListener("click", () => {
  joinForm.hidden = true;
});

// ---- the room --------------------------------------------------------------------------------

let started = false;

function start(myName: string): void {
  started = true;
  meEl.textContent = myName;
  meLine.hidden = false;

  const client = new RealtimeClient(realtimeUrl(), { data: { name: myName } });
  const sub: Subscription<Point> = client.channel<Point>(CHANNEL);

  /** Everyone subscribed, this page included, by client id. */
  let members = new Map<string, Person>();
  /** While a presence query is out: what changed meanwhile (the answer may predate it). */
  let sync: { joined: Map<string, Person>; left: Set<string> } | undefined;
  const gone = new Set<string>();
  const cursors = new Map<string, Cursor>();

  // -- status and people

  const renderStatus = subscriptionBadge(statusEl, client, sub);

  function renderPeople(): void {
    const me = client.clientId;
    const list = [...members.values()].sort((a, b) =>
      a.client === me
        ? -1
        : b.client === me
          ? 1
          : a.name.localeCompare(b.name) || a.client.localeCompare(b.client),
    );
    const items = list.slice(0, MAX_LISTED).map((p) => {
      const li = h(
        "li",
        { "data-testid": "person", "data-client": p.client },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "name" }, p.name),
      );
      if (p.client === me) li.append(h("span", { class: "you" }, " (you)"));
      paint(li, p.colour);
      return li;
    });
    if (list.length > MAX_LISTED) {
      items.push(h("li", { class: "more" }, `and ${list.length - MAX_LISTED} more`));
    }
    peopleEl.replaceChildren(...items);
    const n = list.length;
    countEl.dataset.count = String(n);
    countEl.textContent = n === 1 ? "1 person here" : `${n} people here`;
  }

  // -- cursors

  function place(c: Cursor): void {
    const x = c.point.x * board.clientWidth;
    const y = c.point.y * board.clientHeight;
    c.el.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
  }

  function newCursor(person: Person, point: Point): Cursor {
    const arrow = svg("svg", {
      class: "arrow",
      viewBox: "0 0 14 20",
      width: 14,
      height: 20,
      "aria-hidden": "true",
    });
    // The tip is at (0, 0): the element's origin is the pointer's hot spot.
    arrow.append(
      svg("path", { d: "M0 0 L0 16 L4.2 12.2 L7 18.6 L9.6 17.4 L6.9 11.3 L12.4 11.3 Z" }),
    );
    const el = h(
      "div",
      { class: "cursor", "data-testid": "cursor", "data-client": person.client },
      arrow,
      h("span", { class: "label", "data-testid": "cursor-name" }, person.name),
    );
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", `${person.name}'s pointer`);
    paint(el, person.colour);
    const cursor: Cursor = { el, point, idleTimer: undefined };
    place(cursor); // before it is in the page: no transition from the corner
    board.append(el);
    return cursor;
  }

  function moveCursor(person: Person, point: Point): void {
    let c = cursors.get(person.client);
    if (c === undefined) {
      c = newCursor(person, point);
      cursors.set(person.client, c);
    } else {
      c.point = point;
      place(c);
    }
    const cursor = c;
    cursor.el.classList.remove("idle");
    cursor.el.dataset.idle = "false";
    if (cursor.idleTimer !== undefined) clearTimeout(cursor.idleTimer);
    cursor.idleTimer = setTimeout(() => {
      cursor.idleTimer = undefined;
      cursor.el.classList.add("idle");
      cursor.el.dataset.idle = "true";
    }, IDLE_MS);
  }

  function removeCursor(clientId: string): void {
    const c = cursors.get(clientId);
    if (c === undefined) return;
    if (c.idleTimer !== undefined) clearTimeout(c.idleTimer);
    c.el.remove();
    cursors.delete(clientId);
  }

  window.addEventListener("resize", () => {
    for (const c of cursors.values()) place(c);
  });

  // -- presence

  function noteJoin(person: Person): void {
    gone.delete(person.client);
    members.set(person.client, person);
    sync?.joined.set(person.client, person);
    renderPeople();
  }

  function noteLeave(clientId: string): void {
    members.delete(clientId);
    sync?.joined.delete(clientId);
    sync?.left.add(clientId);
    gone.add(clientId);
    if (gone.size > MAX_GONE) {
      const oldest = gone.values().next();
      if (oldest.done !== true) gone.delete(oldest.value);
    }
    removeCursor(clientId);
    renderPeople();
  }

  function selfPerson(): Person | undefined {
    const id = client.clientId;
    return id === undefined ? undefined : { client: id, name: myName, colour: "" };
  }

  /** Replace the members with a fresh presence query (after every subscribe). */
  async function syncPresence(): Promise<void> {
    const mine = { joined: new Map<string, Person>(), left: new Set<string>() };
    sync = mine;
    const found: ClientInfo[] = [];
    try {
      let cursor: string | undefined;
      do {
        const page = await sub.presence({
          limit: 1000,
          ...(cursor === undefined ? {} : { cursor }),
        });
        found.push(...page.members);
        cursor = page.cursor;
      } while (cursor !== undefined && sync === mine);
    } catch (error) {
      if (sync === mine) sync = undefined;
      console.warn("cursors: presence query failed", error);
      return;
    }
    if (sync !== mine) return; // a newer query is out
    sync = undefined;
    const next = new Map<string, Person>();
    for (const m of found) if (!mine.left.has(m.client)) next.set(m.client, personOf(m));
    for (const [id, p] of mine.joined) next.set(id, p);
    const self = selfPerson();
    if (self !== undefined && !next.has(self.client)) next.set(self.client, self);
    for (const id of members.keys()) if (!next.has(id)) removeCursor(id);
    for (const id of cursors.keys()) if (!next.has(id)) removeCursor(id);
    members = next;
    renderPeople();
  }

  sub.on("join", (member) => noteJoin(personOf(member)));
  sub.on("leave", (member) => noteLeave(member.client));
  sub.on("publication", (p) => {
    const from = p.from;
    if (from === undefined || from.client === client.clientId || gone.has(from.client)) return;
    const point = pointOf(p.data);
    if (point === undefined) return;
    const person = members.get(from.client) ?? personOf(from);
    if (!members.has(from.client)) noteJoin(person); // moved before its join arrived
    moveCursor(person, point);
  });
  sub.on("subscribed", () => {
    renderStatus();
    void syncPresence();
    schedule(); // a position that waited for the subscription
  });
  sub.on("state", renderStatus);
  sub.on("error", (error) => console.warn("cursors:", error.message));

  client.on("state", renderStatus);
  client.on("connected", () => {
    const self = selfPerson();
    if (self !== undefined && !members.has(self.client)) {
      members.set(self.client, self);
      renderPeople();
    }
  });
  client.on("disconnected", (e) => {
    if (e.reconnect) return;
    // The server said no for good (e.g. the nickname): ask again.
    askNickname(`Could not join: ${e.reason || `closed with code ${e.code}`}`);
  });
  client.on("error", (error) => console.warn("cursors:", error.message));

  // -- sending our pointer

  let pending: Point | undefined;
  let frame = 0;
  let inFlight = 0;

  function schedule(): void {
    if (frame === 0 && pending !== undefined) frame = requestAnimationFrame(flush);
  }

  function flush(): void {
    frame = 0;
    const point = pending;
    const id = client.clientId;
    // Not subscribed yet, or too many unacknowledged: the newest position waits; the
    // "subscribed" event or the next ack schedules it again.
    if (point === undefined || id === undefined || sub.state !== "subscribed") return;
    if (inFlight >= MAX_IN_FLIGHT) return;
    pending = undefined;
    inFlight++;
    const rounded = { x: Math.round(point.x * 1e4) / 1e4, y: Math.round(point.y * 1e4) / 1e4 };
    sub
      .publish(rounded, { conflate: id })
      .catch((error: unknown) => {
        console.warn("cursors: publish failed", error);
      })
      .finally(() => {
        inFlight--;
        schedule();
      });
  }

  function onPointer(event: PointerEvent): void {
    if (!event.isPrimary) return;
    const r = board.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return;
    pending = {
      x: clamp01((event.clientX - r.left) / r.width),
      y: clamp01((event.clientY - r.top) / r.height),
    };
    schedule();
  }

  document.addEventListener("pointermove", onPointer, { passive: true });
  document.addEventListener("pointerdown", onPointer, { passive: true });

  renderStatus();
  renderPeople();
  sub.subscribe();
  client.connect();
}

const initial = storedNickname();
if (initial === undefined) askNickname();
else start(initial);
