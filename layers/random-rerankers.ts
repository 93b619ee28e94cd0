/**
 * Random-weight cross-encoders of the real architectures (see random_rerankers.py), built once per machine
 * and cached in `<cache>/random-rerankers/<build id>/<name>/`. The tests, the eval and the rerank benchmark
 * load them through the same code as a real model.
 *
 * The builder runs in a Python virtual environment of its own (`<cache>/python/<requirements id>`), with
 * pinned PyPI packages that need no GPU stack: onnx and numpy write the graphs, sentencepiece and tokenizers
 * make the XLM-R tokenizer, onnxruntime quantizes to int8 (about 100 MB to download, once).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EMBEDDER_NAME, modelFiles } from "../shared/ml/model-files.ts";
import { cacheDir } from "./cache.ts";
import { ensureModels } from "./models.ts";

export const RANDOM_RERANKERS = [
  "minilm-l6-h384",
  "tinybert-l2-h128",
  "tinybert-l2-h128-2way",
  "xlmr-l6-h384",
] as const;
export type RandomRerankerName = (typeof RANDOM_RERANKERS)[number];

const here = dirname(fileURLToPath(import.meta.url));
const builder = join(here, "random_rerankers.py");
/** Exact versions: the same bytes on every machine (tested with Python 3.11). */
const REQUIREMENTS = [
  "numpy==2.4.6",
  "onnx==1.23.2",
  "protobuf==7.36.2",
  "onnxruntime==1.32.0",
  "sentencepiece==0.2.3",
  "tokenizers==0.23.3",
];

const log = (message: string) => process.stderr.write(`[random-rerankers] ${message}\n`);
const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (data) => (output += data));
    child.stderr.on("data", (data) => (output += data));
    child.on("error", (error) => reject(new Error(`${command}: ${error.message}`)));
    child.on("close", (code) =>
      code === 0
        ? resolvePromise()
        : reject(
            new Error(
              `${command} ${args.join(" ")} failed (exit ${code}):\n${output.trim().split("\n").slice(-20).join("\n")}`,
            ),
          ),
    );
  });
}

/** A directory lock (mkdir is atomic) so that parallel test workers build once; a stale lock expires. */
async function withLock<T>(lock: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const age = existsSync(lock) ? Date.now() - statSync(lock).mtimeMs : 0;
      if (age > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() - started > 20 * 60_000) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((wake) => setTimeout(wake, 500));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function pythonEnvironment(): Promise<string> {
  const venv = join(cacheDir, "python", digest(REQUIREMENTS.join("\n")));
  const python = join(venv, "bin", "python");
  if (existsSync(join(venv, ".complete"))) return python;
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(dirname(venv), { recursive: true });
  log(`creating a Python environment in ${venv} (${REQUIREMENTS.join(", ")})`);
  try {
    await run("python3", ["-m", "venv", venv]);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\nThe random cross-encoders need Python 3 with venv (Debian: apt-get install python3-venv).`,
    );
  }
  await run(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", ...REQUIREMENTS]);
  await run(python, ["-c", "open(__import__('sys').argv[1], 'w').close()", join(venv, ".complete")]);
  return python;
}

/** The generated models' directories, building them on first use. */
export async function ensureRandomRerankers(): Promise<Record<RandomRerankerName, string>> {
  const id = digest(readFileSync(builder, "utf8") + REQUIREMENTS.join("\n"));
  const root = join(cacheDir, "random-rerankers", id);
  const dirs = Object.fromEntries(RANDOM_RERANKERS.map((name) => [name, join(root, name)])) as Record<
    RandomRerankerName,
    string
  >;
  const complete = () => Object.values(dirs).every((dir) => existsSync(join(dir, "random-weights.json")));
  if (complete()) return dirs;
  mkdirSync(dirname(root), { recursive: true });
  await withLock(`${root}.lock`, async () => {
    if (complete()) return;
    const tokenizer = modelFiles(await ensureModels([EMBEDDER_NAME]), EMBEDDER_NAME).tokenizer;
    const python = await pythonEnvironment();
    const scratch = `${root}.building`;
    rmSync(scratch, { recursive: true, force: true });
    log(`building ${RANDOM_RERANKERS.join(", ")} into ${root}`);
    const started = Date.now();
    await run(python, [builder, "--bert-tokenizer", tokenizer, "--out", scratch]);
    rmSync(root, { recursive: true, force: true });
    renameSync(scratch, root);
    log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
  return dirs;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureRandomRerankers().then(
    (dirs) => {
      for (const [name, dir] of Object.entries(dirs)) console.log(`${name}\t${dir}`);
    },
    (error: Error) => {
      log(`ERROR: ${error.message}`);
      process.exit(1);
    },
  );
}
