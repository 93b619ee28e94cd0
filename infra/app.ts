#!/usr/bin/env node
/**
 * CDK app entry (`npx tsx infra/app.ts`, see cdk.json). `npm run synth` writes the template to
 * cdk.out/ without AWS credentials or network; `npx cdk deploy --all` deploys it.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { configFromContext, type DataDistillerConfig, InvalidConfigError } from "./config.ts";
import { REPO_ROOT } from "./lambda-defaults.ts";
import { DataDistillerStack } from "./stack.ts";

/** The "context" block of cdk.json (feature flags and defaults), for apps built outside the CLI (tests). */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, "cdk.json"), "utf8")) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

export interface BuildAppOptions {
  /** Extra CDK context (tests); the CLI's -c values and cdk.json arrive through the environment. */
  context?: Record<string, unknown>;
  outdir?: string;
  layerDirectory?: string;
}

export function buildApp(options: BuildAppOptions = {}): {
  app: App;
  stack: DataDistillerStack;
  config: DataDistillerConfig;
} {
  const app = new App({ context: options.context, outdir: options.outdir });
  const config = configFromContext(app.node);
  const stack = new DataDistillerStack(app, `DataDistiller-${config.stage}`, {
    config,
    layerDirectory: options.layerDirectory,
    description: `DataDistiller (${config.stage}): document ingestion and hybrid search`,
    // Account/region of the CLI's credentials when deploying; environment-agnostic when synthesizing offline.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    tags: { project: "datadistiller", stage: config.stage },
  });
  // AWS Solutions rules (cdk-nag 3: a policy-validation plugin). Any unacknowledged finding, error
  // or warning, fails synthesis; acknowledgements with their reasons are in infra/nag.ts.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, config };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  try {
    buildApp().app.synth();
  } catch (error) {
    if (error instanceof InvalidConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
