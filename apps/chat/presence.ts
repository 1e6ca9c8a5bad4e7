/**
 * Who is in a room. Presence is per connection (a person with three tabs is three members);
 * the list shows people: one line per user, with how many tabs they have open.
 */
import type { ClientInfo } from "../../src/realtime/client/index.js";
import { paintUser } from "../shared/colour.js";
import { h } from "../shared/dom.js";
import { type Person, personOf } from "./model.js";

export interface PresentUser {
  readonly user: string;
  readonly name: string;
  readonly colour: string;
  readonly tabs: number;
}

export class Presence {
  readonly #clients = new Map<string, Person>();

  /** Replace everything with a presence snapshot. */
  reset(members: readonly ClientInfo[]): void {
    this.#clients.clear();
    for (const m of members) this.join(m);
  }

  join(member: ClientInfo): void {
    this.#clients.set(member.client, personOf(member));
  }

  leave(member: ClientInfo): void {
    this.#clients.delete(member.client);
  }

  clear(): void {
    this.#clients.clear();
  }

  /** One entry per user, sorted by name. */
  users(): PresentUser[] {
    const byUser = new Map<string, PresentUser>();
    for (const p of this.#clients.values()) {
      const seen = byUser.get(p.user);
      byUser.set(p.user, {
        user: p.user,
        name: p.name,
        colour: p.colour,
        tabs: (seen?.tabs ?? 0) + 1,
      });
    }
    return [...byUser.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** Render the people list and its count. */
export function renderPresence(
  list: HTMLElement,
  count: HTMLElement,
  users: readonly PresentUser[],
  me: string,
): void {
  count.textContent = String(users.length);
  list.replaceChildren(
    ...users.map((u) => {
      const li = h(
        "li",
        { class: "member", "data-testid": "presence-member", "data-user": u.user },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "member-name" }, u.name),
      );
      if (u.user === me) li.append(h("span", { class: "you" }, " (you)"));
      if (u.tabs > 1) li.append(h("span", { class: "tabs" }, ` · ${u.tabs} tabs`));
      paintUser(li, u.colour);
      return li;
    }),
  );
}
