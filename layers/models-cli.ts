/**
 * `npm run models`: fetches the configured embedding models into the models root (`--model ID`,
 * repeatable, or `--all` for others); `--reranker DIR` installs a cross-encoder there.
 */
import { Command } from "commander";
import { installReranker } from "./install-reranker.ts";
import { configuredEmbeddingModels, ensureModels } from "./models.ts";

const log = (message: string) => process.stderr.write(`[models] ${message}\n`);
const options = new Command("models")
  .description("fetch the embedding models into the models root; optionally install a cross-encoder there")
  .option(
    "--model <id>",
    "an embedding model to fetch (repeatable; default: the configured embeddingModels)",
    (id: string, ids: string[] = []) => [...ids, id],
  )
  .option("--all", "fetch every embedding model of the registry")
  .option(
    "--reranker <dir>",
    "install the cross-encoder in DIR (a HuggingFace download: tokenizer.json + model.onnx or onnx/*.onnx), or 'random' for a generated test model",
  )
  .option("--onnx <file>", "with --reranker: which ONNX file, relative to DIR (e.g. onnx/model_quantized.onnx)")
  .option("--name <name>", "with --reranker: the name search responses give the model")
  .parse()
  .opts<{ model?: string[]; all?: boolean; reranker?: string; onnx?: string; name?: string }>();
try {
  const root = await ensureModels(
    configuredEmbeddingModels([
      ...(options.all ? ["--all"] : []),
      ...(options.model ?? []).flatMap((id) => ["--model", id]),
    ]),
  );
  if (options.reranker) {
    await installReranker(options.reranker, root, options);
  }
  console.log(root);
} catch (error) {
  log(`ERROR: ${(error as Error).message}`);
  process.exit(1);
}
