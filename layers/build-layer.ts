/**
 * Assembles the native Lambda layer (`npm run build:layer`) into `<repo>/.local/layer`:
 *
 *   nodejs/node_modules/onnxruntime-node   linux/x64 CPU binaries only (the package ships every platform)
 *   nodejs/node_modules/onnxruntime-common
 *   nodejs/node_modules/faiss-node         with its compiled binding (build/Release/*.node)
 *   nodejs/node_modules/bindings, …        faiss-node's runtime dependencies
 *   lib/                                   shared libraries the bindings link that Amazon Linux 2023
 *                                          lacks (libopenblas, libgomp, libgfortran, …; found with ldd)
 *   models/                                the ONNX models and tokenizers (from MODEL_DIR)
 *   datadistiller-layer.json               what went in, written last (the CDK app checks for it)
 *
 * Lambda mounts a layer at /opt: Node resolves packages from /opt/nodejs/node_modules and the
 * dynamic loader searches /opt/lib, so no environment tweaks are needed.
 *
 * Must run on x86_64 Linux (the Lambda architecture of the functions). Models come from
 * MODEL_DIR, else `$DATADISTILLER_CACHE/models`, else `~/.cache/datadistiller/models` (where
 * `npm run models` puts them). Missing pieces are reported as warnings and recorded in the
 * manifest; `--strict` turns them into a failure.
 */
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { LAYER_DIR, LAYER_MANIFEST, type LayerManifest } from "./native-layer.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Lambda's limit for a function and all its layers, unzipped. */
const LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024;
/** Leave room for the function bundle itself. */
const LAYER_BUDGET = LAMBDA_UNZIPPED_LIMIT - 20 * 1024 * 1024;

/** What Amazon Linux 2023 (the nodejs22.x / nodejs24.x runtimes) provides. */
const AL2023 = { glibc: "2.34", glibcxx: "3.4.29" };

/** Libraries every Lambda execution environment already has: never copied. */
const SYSTEM_LIBRARIES = [
  /^linux-vdso\.so/,
  /^ld-linux/,
  /^libc\.so/,
  /^libm\.so/,
  /^libpthread\.so/,
  /^libdl\.so/,
  /^librt\.so/,
  /^libutil\.so/,
  /^libresolv\.so/,
  /^libstdc\+\+\.so/,
  /^libgcc_s\.so/,
  /^libz\.so/,
];

/** Packages only needed to install or build a native module, not to load it. */
const BUILD_ONLY_PACKAGES = new Set([
  "node-addon-api",
  "prebuild-install",
  "cmake-js",
  "adm-zip",
  "global-agent",
  "node-gyp",
]);

const MODEL_SKIP = /\.(jar|pom|sha1|md5|part|tmp|lock|lastUpdated)$/i;

interface BuildOptions {
  outDir: string;
  modelDir: string;
  strict: boolean;
}

export async function buildLayer(options: BuildOptions): Promise<LayerManifest> {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `the layer must be built on linux/x64 (Lambda's x86_64); this is ${process.platform}/${process.arch}`,
    );
  }
  const warnings: string[] = [];
  const packages: Record<string, string> = {};
  const staging = `${options.outDir}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  const modulesDir = join(staging, "nodejs", "node_modules");
  const libDir = join(staging, "lib");
  mkdirSync(modulesDir, { recursive: true });
  mkdirSync(libDir, { recursive: true });
  const nativeBinaries: string[] = [];

  // onnxruntime-node: the JS, and only the linux/x64 binaries (darwin/win32/arm64 are ~200 MB).
  const ort = packageDir("onnxruntime-node");
  if (!ort) {
    warnings.push("onnxruntime-node is not installed (npm ci): the layer has no ONNX runtime");
  } else {
    const target = join(modulesDir, "onnxruntime-node");
    copyPackageFiles(ort, target, (path) => {
      if (path === "package.json" || path.startsWith(`dist${sep}`)) return !path.endsWith(".map");
      return path.startsWith(join("bin", "napi-v6", "linux", "x64") + sep);
    });
    packages["onnxruntime-node"] = version(ort);
    nativeBinaries.push(...findFiles(target, (file) => file.endsWith(".node")));
    const common = packageDir("onnxruntime-common", ort);
    if (common) {
      copyPackageFiles(
        common,
        join(modulesDir, "onnxruntime-common"),
        (path) => path === "package.json" || (path.startsWith(`dist${sep}`) && !path.endsWith(".map")),
      );
      packages["onnxruntime-common"] = version(common);
    } else {
      warnings.push("onnxruntime-common (dependency of onnxruntime-node) not found");
    }
  }

  // faiss-node: its JS, its compiled binding, and its runtime dependencies (bindings, …).
  const faiss = packageDir("faiss-node");
  if (!faiss) {
    warnings.push("faiss-node is not installed: the layer has no vector index (index and search need it)");
  } else {
    const binaries = findFiles(join(faiss, "build"), (file) => file.endsWith(".node"));
    if (binaries.length === 0)
      warnings.push("faiss-node has no compiled binding (build/Release/faiss-node.node): build it first");
    const target = join(modulesDir, "faiss-node");
    copyPackageFiles(faiss, target, (path) => {
      if (path === "package.json") return true;
      if (path.startsWith(`lib${sep}`)) return /\.(c?js|mjs|d\.ts|json)$/.test(path);
      // The binding and any library next to it; not the intermediate objects (obj.target/…).
      return dirname(path) === join("build", "Release") && /\.(node|so(\.\d+)*)$/.test(path);
    });
    packages["faiss-node"] = version(faiss);
    nativeBinaries.push(...findFiles(join(target, "build"), (file) => file.endsWith(".node")));
    for (const [name, dir] of runtimeDependencies(faiss)) {
      copyPackageFiles(dir, join(modulesDir, name), (path) => !path.startsWith(`test${sep}`) && !path.endsWith(".map"));
      packages[name] = version(dir);
    }
  }

  // pdf-parse (pdf.js): left out of the bundles because pdf.js loads its worker module and its
  // optional canvas binding by path at run time, which a single-file bundle breaks.
  const pdfParse = packageDir("pdf-parse");
  if (!pdfParse) {
    warnings.push("pdf-parse is not installed: the split function cannot read PDFs");
  } else {
    const withoutMaps = (path: string) => !path.endsWith(".map") && !path.startsWith(`test${sep}`);
    copyPackageFiles(pdfParse, join(modulesDir, "pdf-parse"), withoutMaps);
    packages["pdf-parse"] = version(pdfParse);
    for (const [name, dir] of runtimeDependencies(pdfParse)) {
      copyPackageFiles(dir, join(modulesDir, name), withoutMaps);
      packages[name] = version(dir);
    }
    // @napi-rs/canvas picks its binary from a per-platform optional dependency.
    const canvas = packageDir("@napi-rs/canvas-linux-x64-gnu");
    if (canvas) copyPackageFiles(canvas, join(modulesDir, "@napi-rs", "canvas-linux-x64-gnu"), withoutMaps);
  }

  // Shared libraries the bindings need that are not part of Amazon Linux 2023 (ldd resolves the
  // whole dependency tree; libraries shipped inside the packages are already there).
  const sharedLibraries = new Set<string>();
  for (const binary of nativeBinaries) {
    for (const { soname, path } of ldd(binary, warnings)) {
      if (SYSTEM_LIBRARIES.some((pattern) => pattern.test(soname))) continue;
      if (path.startsWith(staging) || path.startsWith(dirname(binary))) continue;
      if (isInside(path, [ort, faiss])) continue;
      if (!sharedLibraries.has(soname)) {
        copyFileSync(path, join(libDir, soname)); // follows symlinks (Debian alternatives)
        sharedLibraries.add(soname);
      }
    }
  }

  // glibc / libstdc++ symbol versions: what Debian built may need more than Amazon Linux 2023 has.
  const requires = symbolVersions([...nativeBinaries, ...[...sharedLibraries].map((soname) => join(libDir, soname))]);
  if (requires.glibc && compareVersions(requires.glibc, AL2023.glibc) > 0) {
    warnings.push(
      `the native code needs GLIBC_${requires.glibc} but Amazon Linux 2023 has ${AL2023.glibc}: build the layer on an older distribution (or in an AL2023 container)`,
    );
  }
  if (requires.glibcxx && compareVersions(requires.glibcxx, AL2023.glibcxx) > 0) {
    warnings.push(
      `the native code needs GLIBCXX_${requires.glibcxx} but Amazon Linux 2023's libstdc++ has ${AL2023.glibcxx}: build with an older toolchain (or in an AL2023 container)`,
    );
  }

  // Models.
  const models: string[] = [];
  if (!existsSync(options.modelDir)) {
    warnings.push(
      `no models at ${options.modelDir} (run \`npm run models\`, or set MODEL_DIR): the layer has no models`,
    );
  } else {
    const target = join(staging, "models");
    cpSync(options.modelDir, target, {
      recursive: true,
      dereference: true,
      filter: (source) => !MODEL_SKIP.test(source) && !basename(source).startsWith("."),
    });
    models.push(...findFiles(target, () => true).map((file) => relative(target, file)));
    if (!models.some((file) => file.endsWith(".onnx"))) warnings.push(`no .onnx model found in ${options.modelDir}`);
  }

  const unpackedBytes = directorySize(staging);
  if (unpackedBytes > LAYER_BUDGET) {
    warnings.push(
      `the layer is ${mib(unpackedBytes)} unzipped; Lambda allows 250 MiB for a function and its layers together: ` +
        "load the models from S3 instead (-c modelLocation=s3://bucket/prefix)",
    );
  }

  const manifest: LayerManifest = {
    builtAt: new Date().toISOString(),
    platform: "linux-x64",
    packages,
    sharedLibraries: [...sharedLibraries].sort(),
    models: models.sort(),
    requires,
    warnings,
    unpackedBytes,
  };
  if (options.strict && warnings.length > 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`layer incomplete (--strict):\n  - ${warnings.join("\n  - ")}`);
  }
  writeFileSync(join(staging, LAYER_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(options.outDir, { recursive: true, force: true });
  renameSync(staging, options.outDir);
  return manifest;
}

/**
 * The directory of an installed package, found as Node's resolver walks node_modules folders from
 * `from` (default: the repo) upwards. Looks for package.json directly: packages with an "exports"
 * map (onnxruntime-common) refuse `require.resolve("<name>/package.json")`.
 */
function packageDir(name: string, from: string = REPO_ROOT): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function version(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
}

/** Production dependencies of a package, transitively, minus install/build-only tools. */
function runtimeDependencies(root: string): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      if (BUILD_ONLY_PACKAGES.has(name) || found.has(name)) continue;
      const depDir = packageDir(name, dir);
      if (!depDir) continue;
      found.set(name, depDir);
      visit(depDir);
    }
  };
  visit(root);
  return found;
}

function copyPackageFiles(from: string, to: string, include: (relativePath: string) => boolean): void {
  for (const file of findFiles(from, () => true, ["node_modules"])) {
    const path = relative(from, file);
    if (!include(path)) continue;
    mkdirSync(dirname(join(to, path)), { recursive: true });
    copyFileSync(file, join(to, path));
  }
}

function findFiles(dir: string, match: (file: string) => boolean, skipDirs: string[] = []): string[] {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skipDirs.includes(entry.name)) files.push(...findFiles(path, match, skipDirs));
    } else if (match(path)) {
      files.push(path);
    }
  }
  return files;
}

function isInside(path: string, dirs: (string | undefined)[]): boolean {
  return dirs.some((dir) => dir !== undefined && !relative(dir, path).startsWith(".."));
}

/** `ldd` of a binary: each resolved dependency with its soname. */
function ldd(binary: string, warnings: string[]): { soname: string; path: string }[] {
  let output: string;
  try {
    output = execFileSync("ldd", [binary], { encoding: "utf8" });
  } catch (error) {
    warnings.push(`ldd failed on ${basename(binary)}: ${(error as Error).message.split("\n")[0]}`);
    return [];
  }
  const libraries: { soname: string; path: string }[] = [];
  for (const line of output.split("\n")) {
    const match = /^\s*(\S+)\s+=>\s+(\S+)\s+\(/.exec(line);
    if (match?.[1] && match[2]) libraries.push({ soname: match[1], path: match[2] });
    else if (/=>\s+not found/.test(line)) warnings.push(`${basename(binary)}: ${line.trim()}`);
  }
  return libraries;
}

/** Highest GLIBC_ and GLIBCXX_ versions referenced by the binaries (objdump's version references). */
function symbolVersions(binaries: string[]): { glibc?: string; glibcxx?: string } {
  let glibc: string | undefined;
  let glibcxx: string | undefined;
  for (const binary of binaries) {
    let text: string;
    try {
      text = execFileSync("objdump", ["-p", binary], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
      const start = text.indexOf("Version References:");
      text = start >= 0 ? text.slice(start) : "";
    } catch {
      text = readFileSync(binary).toString("latin1");
    }
    for (const [, found] of text.matchAll(/\bGLIBC_(\d+\.\d+(?:\.\d+)?)\b/g)) {
      if (found && (!glibc || compareVersions(found, glibc) > 0)) glibc = found;
    }
    for (const [, found] of text.matchAll(/\bGLIBCXX_(\d+\.\d+\.\d+)\b/g)) {
      if (found && (!glibcxx || compareVersions(found, glibcxx) > 0)) glibcxx = found;
    }
  }
  return { ...(glibc ? { glibc } : {}), ...(glibcxx ? { glibcxx } : {}) };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

function directorySize(dir: string): number {
  return findFiles(dir, () => true).reduce((sum, file) => sum + statSync(file).size, 0);
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function defaultModelDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODEL_DIR) return resolve(env.MODEL_DIR);
  const cache = env.DATADISTILLER_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "datadistiller");
  return join(resolve(cache), "models");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help")) {
    process.stdout.write(
      "usage: npm run build:layer [-- --strict] [--out DIR]\n  MODEL_DIR=<dir> picks the models (default ~/.cache/datadistiller/models)\n",
    );
    return;
  }
  const outIndex = args.indexOf("--out");
  const outDir = outIndex >= 0 && args[outIndex + 1] ? resolve(args[outIndex + 1] as string) : LAYER_DIR;
  const began = Date.now();
  const manifest = await buildLayer({ outDir, modelDir: defaultModelDir(), strict: args.includes("--strict") });
  const lines = [
    `native layer written to ${relative(process.cwd(), outDir) || "."} (${mib(manifest.unpackedBytes)} unzipped, ${((Date.now() - began) / 1000).toFixed(1)} s)`,
    `  packages: ${
      Object.entries(manifest.packages)
        .map(([name, v]) => `${name}@${v}`)
        .join(", ") || "none"
    }`,
    `  shared libraries: ${manifest.sharedLibraries.join(", ") || "none"}`,
    `  models: ${manifest.models.length} files`,
    `  needs: glibc ${manifest.requires.glibc ?? "?"}, libstdc++ ${manifest.requires.glibcxx ?? "?"} (Amazon Linux 2023: ${AL2023.glibc}, ${AL2023.glibcxx})`,
    ...manifest.warnings.map((warning) => `  WARNING: ${warning}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`build:layer failed: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
