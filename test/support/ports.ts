/**
 * Ports for test servers that must keep their port across restarts (cluster nodes, nginx).
 *
 * A port picked by binding port 0 lies in the kernel's ephemeral range, where the outgoing
 * connections of every process also get their local ports: once such a server stops, an outgoing
 * connection may take its port and the restart fails. So these ports are picked at random just
 * below the ephemeral range (and checked free by binding them); where that range starts too low,
 * port 0 it is.
 */
import { readFileSync } from "node:fs";
import * as net from "node:net";

const HOST = "127.0.0.1";
/** How many ports below the ephemeral range to choose from. */
const SPAN = 10_000;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** Bind `port` (0: any) on loopback, then release it; the port bound, or undefined if taken. */
export function tryBind(port: number, host = HOST): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(undefined));
    server.listen({ port, host, exclusive: true }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

/** A loopback port that was free a moment ago, outside the ephemeral range when possible. */
export async function stablePort(host = HOST): Promise<number> {
  const low = ephemeralLow();
  if (low - SPAN >= 1024) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = low - SPAN + Math.floor(Math.random() * SPAN);
      const port = await tryBind(candidate, host);
      if (port !== undefined) return port;
    }
  }
  const port = await tryBind(0, host);
  if (port === undefined) throw new Error("no free loopback port");
  return port;
}
