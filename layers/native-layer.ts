import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Annotations, RemovalPolicy } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

/** The repository root (this file lives in <root>/layers). */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Where `npm run build:layer` assembles the layer (git-ignored). */
export const LAYER_DIR = join(REPO_ROOT, ".local", "layer");
/** Written last by the build: its presence means the layer directory is complete. */
export const LAYER_MANIFEST = "datadistiller-layer.json";
/** Where the models are inside the layer once Lambda has mounted it (/opt/<layer path>). */
export const LAYER_MODEL_DIR = "/opt/models";

/** What build-layer.ts records about the layer it assembled (also shipped as /opt/datadistiller-layer.json). */
export interface LayerManifest {
  builtAt: string;
  platform: "linux-x64";
  packages: Record<string, string>;
  sharedLibraries: string[];
  models: string[];
  /** Highest symbol versions the native code needs (checked against Amazon Linux 2023). */
  requires: { glibc?: string; glibcxx?: string };
  warnings: string[];
  unpackedBytes: number;
}

export interface NativeLayerProps {
  /**
   * Directory holding the layer, built by `npm run build:layer`.
   * @default "<repo>/.local/layer"
   */
  readonly directory?: string;
  /**
   * What happens to the layer's versions when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The native layer shared by the functions that run models or FAISS: onnxruntime-node (linux/x64
 * CPU binaries only), faiss-node with the shared libraries it links, and the ONNX models
 * (`/opt/models`). Node finds the packages in /opt/nodejs/node_modules; the dynamic loader finds
 * the libraries in /opt/lib (both are on Lambda's default search paths).
 *
 * When the layer has not been built (a fresh checkout, CI, `npm run synth` offline), a placeholder
 * directory is used so that synth still works, and a warning says `npm run build:layer` is needed
 * before a deploy: the functions would fail to load their native modules without it. The local
 * runtime never uses the layer (it runs against the repo's node_modules and the model cache).
 */
export class NativeLayer extends Construct {
  readonly layer: lambda.LayerVersion;
  /** True when the real layer was found; false when the placeholder is used. */
  readonly built: boolean;
  readonly manifest: LayerManifest | undefined;

  constructor(scope: Construct, id: string, props: NativeLayerProps = {}) {
    super(scope, id);
    const directory = props.directory ?? LAYER_DIR;
    const manifestPath = join(directory, LAYER_MANIFEST);
    this.built = existsSync(manifestPath);
    this.manifest = this.built ? (JSON.parse(readFileSync(manifestPath, "utf8")) as LayerManifest) : undefined;

    let assetDir = directory;
    if (!this.built) {
      assetDir = placeholderDir();
      const message =
        "The native layer has not been built: synthesizing with an empty placeholder layer. " +
        "Run `npm run build:layer` before `cdk deploy` (the functions need onnxruntime-node, faiss-node and the models).";
      Annotations.of(this).addWarningV2("datadistiller:nativeLayerMissing", message);
      warnOnce(message);
    } else {
      for (const warning of this.manifest?.warnings ?? []) {
        Annotations.of(this).addWarningV2("datadistiller:nativeLayerWarning", warning);
      }
    }

    this.layer = new lambda.LayerVersion(this, "Layer", {
      code: lambda.Code.fromAsset(assetDir),
      description: this.built
        ? `DataDistiller native layer: ${Object.entries(this.manifest?.packages ?? {})
            .map(([name, version]) => `${name}@${version}`)
            .join(", ")}, models: ${(this.manifest?.models ?? []).length}`.slice(0, 256)
        : "DataDistiller native layer PLACEHOLDER: run npm run build:layer before deploying",
      compatibleArchitectures: [lambda.Architecture.X86_64],
      compatibleRuntimes: [lambda.Runtime.NODEJS_22_X, ...nodejs24()],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }
}

function nodejs24(): lambda.Runtime[] {
  const runtime = (lambda.Runtime as unknown as Record<string, lambda.Runtime | undefined>).NODEJS_24_X;
  return runtime ? [runtime] : [];
}

/** An (almost) empty asset directory: a README, so the zip is valid and says what it is. */
function placeholderDir(): string {
  const dir = join(REPO_ROOT, ".local", "layer-placeholder");
  const readme = join(dir, "PLACEHOLDER.txt");
  if (!existsSync(readme)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      readme,
      "Placeholder for the DataDistiller native layer. Run `npm run build:layer` and synthesize again before deploying.\n",
    );
  }
  return dir;
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  process.stderr.write(`\n[datadistiller] WARNING: ${message}\n\n`);
}
