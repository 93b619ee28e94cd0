/** `npm run models`: fetches the embedder into the models root; `--reranker DIR` installs a cross-encoder there. */
import { Command } from "commander";
import { installReranker } from "./install-reranker.ts";
import { ensureModels } from "./models.ts";

const log = (message: string) => process.stderr.write(`[models] ${message}\n`);
const options = new Command("models")
  .description("fetch the embedder into the models root; optionally install a cross-encoder there")
  .option(
    "--reranker <dir>",
    "install the cross-encoder in DIR (a HuggingFace download: tokenizer.json + model.onnx or onnx/*.onnx), or 'random' for a generated test model",
  )
  .option("--onnx <file>", "with --reranker: which ONNX file, relative to DIR (e.g. onnx/model_quantized.onnx)")
  .option("--name <name>", "with --reranker: the name search responses give the model")
  .parse()
  .opts<{ reranker?: string; onnx?: string; name?: string }>();
try {
  const root = await ensureModels();
  if (options.reranker) {
    await installReranker(options.reranker, root, options);
  }
  console.log(root);
} catch (error) {
  log(`ERROR: ${(error as Error).message}`);
  process.exit(1);
}
