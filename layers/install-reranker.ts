/**
 * `npm run models -- --reranker DIR`: installs a cross-encoder a user downloaded elsewhere into
 * `<models root>/reranker/`, where the search function (and the layer, `npm run build:layer`) finds it.
 *
 * The model is loaded and probed first (CrossEncoder.load), so a directory that would not work is refused
 * here with the reason, not discovered by a failing deploy. Only the files the platform reads are copied:
 * the chosen ONNX file (and its external-data file, if any), tokenizer.json, config.json,
 * tokenizer_config.json, special_tokens_map.json, random-weights.json; reranker.json records the name, the
 * ONNX file, where it came from and its sha256. `--reranker random` installs the generated MiniLM-L6-shaped
 * model (random weights: reranking runs, its order means nothing).
 */
import { createHash } from "node:crypto";
import { copyFileSync, createReadStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { RERANKER_DIR } from "../shared/ml/model-files.ts";
import { CrossEncoder } from "../shared/ml/reranker.ts";
import { locateReranker, onnxRelative } from "../shared/ml/reranker-files.ts";
import { ensureRandomRerankers, RANDOM_RERANKERS, type RandomRerankerName } from "./random-rerankers.ts";

const OPTIONAL_FILES = [
  "config.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "random-weights.json",
] as const;

const log = (message: string) => process.stderr.write(`[models] ${message}\n`);

function sha256(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

/** Installs the cross-encoder in `source` (or "random" / "random:<name>") as `<root>/reranker`; returns that directory. */
export async function installReranker(
  source: string,
  root: string,
  options: { onnx?: string; name?: string } = {},
): Promise<string> {
  let dir = resolve(source);
  if (source === "random" || source.startsWith("random:")) {
    const name = (source.split(":")[1] || "minilm-l6-h384") as RandomRerankerName;
    if (!RANDOM_RERANKERS.includes(name))
      throw new Error(`no random model ${name}: one of ${RANDOM_RERANKERS.join(", ")}`);
    dir = (await ensureRandomRerankers())[name];
  }
  const files = locateReranker(dir, options.onnx);
  const encoder = await CrossEncoder.load(dir, { onnxFile: onnxRelative(files), threads: 1 });
  const { info } = encoder;
  log(
    `${files.name}: ${onnxRelative(files)}, inputs ${info.inputs.join(", ")}, ${info.labels} logit${info.labels === 1 ? "" : "s"}, ` +
      `up to ${info.maxTokens} tokens${info.batchInvariant ? "" : ", int8 (one pair per call)"}${info.randomWeights ? ", RANDOM WEIGHTS" : ""}`,
  );

  const target = join(root, RERANKER_DIR);
  const staging = `${target}.installing`;
  rmSync(staging, { recursive: true, force: true });
  const onnx = onnxRelative(files);
  mkdirSync(dirname(join(staging, onnx)), { recursive: true });
  copyFileSync(files.onnx, join(staging, onnx));
  // Models over 2 GB keep their weights in an external-data file next to the graph, under the name it references.
  for (const data of [`${basename(onnx)}_data`, `${basename(onnx)}.data`]) {
    const from = join(dirname(files.onnx), data);
    if (existsSync(from)) copyFileSync(from, join(staging, dirname(onnx), data));
  }
  copyFileSync(files.tokenizer, join(staging, "tokenizer.json"));
  for (const file of OPTIONAL_FILES)
    if (existsSync(join(dir, file))) copyFileSync(join(dir, file), join(staging, file));
  writeFileSync(
    join(staging, "reranker.json"),
    `${JSON.stringify(
      {
        name: options.name ?? files.name,
        onnx,
        source: dir,
        sha256: await sha256(files.onnx),
        installedAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
  rmSync(target, { recursive: true, force: true });
  renameSync(staging, target);
  log(`cross-encoder installed in ${target}`);
  return target;
}
