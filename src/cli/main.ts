#!/usr/bin/env node
import { runCli } from "./cli.js";
import { startEcho } from "./echo.js";

const result = runCli(process.argv.slice(2));
if (result.stdout !== "") process.stdout.write(`${result.stdout}\n`);
if (result.stderr !== "") process.stderr.write(`${result.stderr}\n`);
process.exitCode = result.code;

if (result.run?.command === "echo") {
  const { options } = result.run;
  try {
    const server = await startEcho(options);
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : options.port;
    process.stdout.write(
      `duplex echo listening on ws://${options.host}:${port}${options.path ?? "/"}\n`,
    );
    const stop = (): void => {
      server.close(2_000).then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  } catch (e) {
    process.stderr.write(
      `duplex echo: cannot listen on ${options.host}:${options.port}: ${(e as Error).message}\n`,
    );
    process.exit(1);
  }
}
