#!/usr/bin/env node
// Makes sure the system programs that test suites need are present. Each entry names the command
// that must exist and the Debian package that provides it. When one is missing it is installed
// with apt-get if we are root and apt-get exists; otherwise we stop with a message naming the
// package. Nothing is ever skipped silently.
import { spawnSync } from "node:child_process";

/** @type {{ check: string[], pkg: string, why: string }[]} */
export const REQUIREMENTS = [
  {
    check: ["openssl", "version"],
    pkg: "openssl",
    why: "TLS tests make a certificate at test time",
  },
  {
    check: ["/usr/bin/python3", "-c", "import websockets"],
    pkg: "python3-websockets",
    why: "interop tests with Python websockets",
  },
  { check: ["chromium", "--version"], pkg: "chromium", why: "browser interop tests" },
  {
    check: ["redis-server", "--version"],
    pkg: "redis-server",
    why: "Redis broker tests start their own redis-server",
  },
  {
    check: ["nginx", "-v"],
    pkg: "nginx",
    why: "cluster tests put a real nginx in front of several duplex serve nodes",
  },
];

function present(check) {
  const r = spawnSync(check[0], check.slice(1), { stdio: "ignore" });
  return r.status === 0;
}

const missing = REQUIREMENTS.filter((r) => !present(r.check));
if (missing.length === 0) process.exit(0);

const pkgs = [...new Set(missing.map((m) => m.pkg))];
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const hasApt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
if (!isRoot || !hasApt) {
  for (const m of missing) console.error(`missing: ${m.check.join(" ")} (${m.why})`);
  console.error(`Install the Debian packages first: apt-get install -y ${pkgs.join(" ")}`);
  process.exit(1);
}
console.error(`system-deps: installing ${pkgs.join(" ")} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
for (const args of [["update"], ["install", "-y", ...pkgs]]) {
  const r = spawnSync("apt-get", args, { stdio: "inherit", env });
  if (r.status !== 0) {
    console.error(`system-deps: apt-get ${args[0]} failed; install ${pkgs.join(" ")} by hand`);
    process.exit(1);
  }
}
const still = REQUIREMENTS.filter((r) => !present(r.check));
if (still.length > 0) {
  console.error(`system-deps: still missing after install: ${still.map((s) => s.pkg).join(" ")}`);
  process.exit(1);
}
