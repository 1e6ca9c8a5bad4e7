/**
 * The connection badge every app shows: the realtime client's state in words a person reads.
 * connecting → "connecting", connected → "live", disconnected (waiting to reconnect) →
 * "reconnecting", closed → "offline".
 */

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
