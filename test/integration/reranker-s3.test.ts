/**
 * A cross-encoder on an S3 prefix (rerankerLocation=s3://…), fetched the way the search function fetches it
 * on a cold start, from the real S3 server the global setup started.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { CreateBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureRandomRerankers } from "../../layers/random-rerankers.ts";
import { syncS3Prefix } from "../../shared/adapters/model-sync.ts";
import { loadReranker } from "../../shared/ml/reranker-source.ts";
import { s3Client, uniqueName } from "../support/clients.ts";

const client: S3Client = s3Client();
const bucket = uniqueName("dd-models");
const scratch = mkdtempSync(join(tmpdir(), "reranker-s3-"));
let modelDir: string;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(path).isFile());
}

async function upload(dir: string, prefix: string) {
  for (const file of filesUnder(dir)) {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${relative(dir, file)}`, Body: readFileSync(file) }),
    );
  }
}

beforeAll(async () => {
  modelDir = (await ensureRandomRerankers())["tinybert-l2-h128"];
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await upload(modelDir, "rerankers/tiny/");
}, 900_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("cross-encoder from an S3 prefix", () => {
  it("is copied to a local directory once, loaded, and only changed files are fetched again", async () => {
    const cacheDir = join(scratch, "reranker");
    const source = { modelDir: "/nonexistent", rerankerS3Uri: `s3://${bucket}/rerankers/tiny`, s3: client, cacheDir };
    const first = await loadReranker(source);
    expect(first.reranker?.info).toMatchObject({ onnxFile: "model.onnx", labels: 1 });
    expect(first.reranker?.model).toEqual({ name: "random-tinybert-l2-h128", randomWeights: true });
    expect(readFileSync(join(cacheDir, "model.onnx")).equals(readFileSync(join(modelDir, "model.onnx")))).toBe(true);

    const files = filesUnder(modelDir).length;
    expect(await syncS3Prefix(client, source.rerankerS3Uri, cacheDir)).toMatchObject({ files, downloaded: 0 });
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: "rerankers/tiny/config.json", Body: '{"model_type":"bert"}' }),
    );
    expect(await syncS3Prefix(client, source.rerankerS3Uri, cacheDir)).toMatchObject({ files, downloaded: 1 });
    expect(readFileSync(join(cacheDir, "config.json"), "utf8")).toBe('{"model_type":"bert"}');
  });

  it("a prefix that holds no cross-encoder is an error at load", async () => {
    await expect(
      loadReranker({
        modelDir: "/nonexistent",
        rerankerS3Uri: `s3://${bucket}/nothing-here/`,
        s3: client,
        cacheDir: join(scratch, "empty"),
      }),
    ).rejects.toThrow(/holds no cross-encoder/);
  });

  it("modelLocation=s3: the models prefix is copied with its reranker/ directory, which search then finds", async () => {
    await upload(modelDir, "models/v1/reranker/");
    const root = join(scratch, "models");
    expect((await syncS3Prefix(client, `s3://${bucket}/models/v1/`, root)).downloaded).toBe(
      filesUnder(modelDir).length,
    );
    const loaded = await loadReranker({ modelDir: root });
    expect(loaded.dir).toBe(join(root, "reranker"));
    expect(loaded.reranker?.info.inputs).toEqual(["input_ids", "attention_mask", "token_type_ids"]);
  });

  it("no cross-encoder in the models root is a normal state with a reason", async () => {
    const loaded = await loadReranker({ modelDir: join(scratch, "no-models") });
    expect(loaded.reranker).toBeUndefined();
    expect(loaded.unavailable).toBe("no cross-encoder on the server");
  });
});
