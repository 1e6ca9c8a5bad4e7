#!/usr/bin/env node
import { main } from "./cli.js";

const controller = new AbortController();
const stop = (): void => controller.abort();
process.once("SIGINT", stop);
process.once("SIGTERM", stop);

const code = await main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
process.off("SIGINT", stop);
process.off("SIGTERM", stop);
process.exitCode = code;
// Commands release what they hold; stdin may still be referenced by a reader.
process.stdin.unref?.();
