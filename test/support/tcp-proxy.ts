/**
 * A TCP relay on loopback for fault tests: forwards every connection to a target port and lets
 * a test cut connections (RST, no closing handshake) or make them silent (bytes stop flowing in
 * both directions, nothing is closed) — what a dropped Wi-Fi or a dead NAT entry looks like.
 */
import * as net from "node:net";

export interface Relay {
  readonly port: number;
  /** Open relayed connections, oldest first. */
  readonly connections: ReadonlySet<RelayedConnection>;
  /** Cut every open connection. */
  cutAll(): void;
  close(): Promise<void>;
}

export class RelayedConnection {
  silent = false;
  constructor(
    readonly inbound: net.Socket,
    readonly outbound: net.Socket,
  ) {}
  /** Reset both sides at once. */
  cut(): void {
    this.inbound.resetAndDestroy();
    this.outbound.resetAndDestroy();
  }
}

export async function startRelay(targetPort: number, host = "127.0.0.1"): Promise<Relay> {
  const connections = new Set<RelayedConnection>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, host);
    const c = new RelayedConnection(inbound, outbound);
    connections.add(c);
    inbound.on("data", (d) => {
      if (!c.silent && !outbound.destroyed) outbound.write(d);
    });
    outbound.on("data", (d) => {
      if (!c.silent && !inbound.destroyed) inbound.write(d);
    });
    const end = (): void => {
      connections.delete(c);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", end);
    outbound.on("error", end);
    inbound.on("close", end);
    outbound.on("close", end);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    cutAll() {
      for (const c of [...connections]) c.cut();
    },
    async close() {
      for (const c of [...connections]) c.cut();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
