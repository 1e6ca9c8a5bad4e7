/**
 * `duplex echo`: a plain WebSocket echo endpoint like the public echo services tutorials use.
 * Every message comes back with its type (text stays text, binary stays binary).
 */
import { type WebSocketConnection, WebSocketServer } from "../server/index.js";
import { aborted, CliError, type Command, type Io, integer, parseFlags } from "./command.js";

export const ECHO_USAGE = `Usage: duplex echo [options]

Runs a WebSocket echo endpoint: every message is sent back with its type.

Options:
  --port N              port to listen on (default 9001; 0 picks a free one)
  --host HOST           address to bind (default 127.0.0.1)
  --path PATH           accept upgrades on this path only (default: any)
  --deflate             negotiate permessage-deflate
  --subprotocols a,b    accept these subprotocols (first offered that we know wins)
  --max-message BYTES   largest message accepted (default 16777216)
  -h, --help            print this help`;

export interface EchoOptions {
  readonly port: number;
  readonly host: string;
  readonly path?: string;
  readonly deflate: boolean;
  readonly subprotocols: readonly string[];
  readonly maxMessageBytes: number;
}

/** Parse `duplex echo` flags; throws a UsageError with a one-line message on bad input. */
export function parseEchoArgs(args: readonly string[]): EchoOptions | "help" {
  const { values } = parseFlags(args, {
    port: { type: "string", default: "9001" },
    host: { type: "string", default: "127.0.0.1" },
    path: { type: "string" },
    deflate: { type: "boolean", default: false },
    subprotocols: { type: "string", default: "" },
    "max-message": { type: "string", default: String(16 * 1024 * 1024) },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help === true) return "help";
  const port = integer("--port", values.port ?? "", 0, 65535);
  const maxMessageBytes = integer(
    "--max-message",
    values["max-message"] ?? "",
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const subprotocols = (values.subprotocols ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return {
    port,
    host: values.host ?? "127.0.0.1",
    ...(values.path === undefined ? {} : { path: values.path }),
    deflate: values.deflate === true,
    subprotocols,
    maxMessageBytes,
  };
}

/** Start the echo server; resolves once it listens. */
export function startEcho(options: EchoOptions): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    const server: WebSocketServer = new WebSocketServer(
      {
        port: options.port,
        host: options.host,
        ...(options.path === undefined ? {} : { path: options.path }),
        perMessageDeflate: options.deflate,
        limits: { maxMessageBytes: options.maxMessageBytes },
        handleProtocols: (offered) => offered.find((p) => options.subprotocols.includes(p)),
      },
      () => resolve(server),
    );
    server.once("error", reject);
    server.on("connection", (conn: WebSocketConnection) => {
      conn.on("message", (data: Buffer, isBinary: boolean) => {
        if (conn.readyState === 1) conn.send(data, { binary: isBinary });
      });
    });
  });
}

export const echoCommand: Command = {
  name: "echo",
  summary: "run a plain WebSocket echo endpoint",
  usage: ECHO_USAGE,
  async run(args: readonly string[], io: Io): Promise<number> {
    const options = parseEchoArgs(args);
    if (options === "help") {
      io.stdout.write(`${ECHO_USAGE}\n`);
      return 0;
    }
    let server: WebSocketServer;
    try {
      server = await startEcho(options);
    } catch (e) {
      throw new CliError(
        `cannot listen on ${options.host}:${options.port}: ${(e as Error).message}`,
      );
    }
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : options.port;
    io.stdout.write(
      `duplex echo listening on ws://${options.host}:${port}${options.path ?? "/"}\n`,
    );
    await aborted(io.signal);
    await server.close(2_000);
    return 0;
  },
};
