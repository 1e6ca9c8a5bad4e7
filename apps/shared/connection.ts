/**
 * The connection badge every app shows: the realtime client's state in words a person reads.
 * connecting → "connecting", connected → "live", disconnected (waiting to reconnect) →
 * "reconnecting", closed → "offline".
 */
import type { ConnectionState, SubscriptionState } from "../../src/realtime/client/index.js";

export type ConnectionStateName = "connecting" | "connected" | "disconnected" | "closed";

export const CONNECTION_LABELS: Readonly<Record<ConnectionStateName, string>> = {
  connecting: "connecting",
  connected: "live",
  disconnected: "reconnecting",
  closed: "offline",
};

/** Show `state` on a badge element: its text, `data-state` (the label) for CSS and tests. */
export function showConnection(badge: HTMLElement, state: ConnectionStateName): void {
  const label = CONNECTION_LABELS[state];
  badge.textContent = label;
  badge.dataset.state = label;
  badge.title = `Connection: ${label}`;
}

/**
 * The badge of a page that lives on one subscription (cursors, stats): "live" only while
 * connected and subscribed, "reconnecting" rather than "connecting" once it has been live,
 * "offline" when the client is closed. Returns the function that redraws it: call it on every
 * state change of the client and of the subscription.
 */
export function subscriptionBadge(
  badge: HTMLElement,
  client: { readonly state: ConnectionState },
  sub: { readonly state: SubscriptionState },
): () => void {
  let everLive = false;
  return () => {
    let state: ConnectionStateName;
    if (client.state === "closed") state = "closed";
    else if (client.state === "connected" && sub.state === "subscribed") state = "connected";
    else state = everLive ? "disconnected" : "connecting";
    if (state === "connected") everLive = true;
    const label = CONNECTION_LABELS[state];
    badge.dataset.state = label;
    badge.textContent = label;
  };
}
