import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { Annotations, Match } from "aws-cdk-lib/assertions";
import { afterAll, describe, expect, it } from "vitest";
import { buildLayer } from "../../layers/build-layer.ts";
import { LAYER_MANIFEST, type LayerManifest, NativeLayer } from "../../layers/native-layer.ts";

const scratch = mkdtempSync(join(tmpdir(), "datadistiller-layer-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("native layer construct", () => {
  it("falls back to a placeholder with a warning when the layer was not built", () => {
    const stack = new Stack(new App(), "LayerMissing");
    const layer = new NativeLayer(stack, "Native", { directory: join(scratch, "missing") });
    expect(layer.built).toBe(false);
    Annotations.fromStack(stack).hasWarning("/LayerMissing/Native", Match.stringLikeRegexp("npm run build:layer"));
  });

  it("uses the built layer directory when its manifest is there", () => {
    const dir = join(scratch, "built");
    mkdirSync(join(dir, "nodejs", "node_modules"), { recursive: true });
    writeFileSync(
      join(dir, LAYER_MANIFEST),
      JSON.stringify({ packages: { "onnxruntime-node": "1.30.0" }, models: [], warnings: [] }),
    );
    const stack = new Stack(new App(), "LayerBuilt");
    const layer = new NativeLayer(stack, "Native", { directory: dir });
    expect(layer.built).toBe(true);
    expect(Annotations.fromStack(stack).findWarning("*", Match.stringLikeRegexp("build:layer"))).toEqual([]);
  });
});

describe("build-layer", () => {
  it("copies onnxruntime-node for linux/x64 only, the models, and writes the manifest last", async () => {
    const models = join(scratch, "models");
    mkdirSync(join(models, "embedder"), { recursive: true });
    writeFileSync(join(models, "embedder", "model.onnx"), "onnx");
    writeFileSync(join(models, "embedder", "tokenizer.json"), "{}");
    writeFileSync(join(models, "embedder", "download.jar"), "jar");
    const out = join(scratch, "layer");

    const manifest = await buildLayer({ outDir: out, modelDir: models, strict: false });

    const ort = join(out, "nodejs", "node_modules", "onnxruntime-node");
    expect(existsSync(join(ort, "bin", "napi-v6", "linux", "x64", "onnxruntime_binding.node"))).toBe(true);
    for (const pruned of ["darwin", "win32", join("linux", "arm64")])
      expect(existsSync(join(ort, "bin", "napi-v6", pruned))).toBe(false);
    expect(existsSync(join(out, "nodejs", "node_modules", "onnxruntime-common", "package.json"))).toBe(true);
    expect(manifest.models.sort()).toEqual([join("embedder", "model.onnx"), join("embedder", "tokenizer.json")]);
    expect(manifest.sharedLibraries.filter((lib) => /^(libc|libm|libstdc\+\+|ld-linux)/.test(lib))).toEqual([]);
    expect(JSON.parse(readFileSync(join(out, LAYER_MANIFEST), "utf8")) as LayerManifest).toMatchObject({
      platform: "linux-x64",
    });
    expect(existsSync(`${out}.tmp`)).toBe(false);
  });
});
