import { Command } from "commander";
import { StackError } from "../servers/process.ts";
import { shellExports, stackDown, stackStatus, stackUp } from "../servers/stack.ts";
import { CONSOLE_PATH, consoleHandler } from "./console.ts";
import { invokeFunction, startPlatform } from "./platform.ts";
import { mintToken } from "./tokens.ts";

// Progress goes to stderr so that stdout carries only what a shell may `eval`.
const report = (line: string) => process.stderr.write(`${line}\n`);

const program = new Command("localstack")
  .description("Run DataDistiller's local stack: Apache Kafka, an S3 server and DynamoDB Local")
  .showHelpAfterError();

program
  .command("up")
  .description("start the servers (or reuse running ones) and print their endpoints as shell exports")
  .action(async () => {
    const began = Date.now();
    const { env } = await stackUp(report);
    report(`stack ready in ${((Date.now() - began) / 1000).toFixed(1)}s; load it with: eval "$(npm run -s stack:up)"`);
    process.stdout.write(`${shellExports(env)}\n`);
  });

program
  .command("down")
  .description("stop every server this checkout started")
  .action(async () => {
    const stopped = await stackDown(report);
    if (stopped.length === 0) report("nothing was running");
  });

program
  .command("status")
  .description("report each server's state")
  .action(async () => {
    for (const { name, state, detail } of await stackStatus()) {
      process.stdout.write(`${name.padEnd(9)} ${state.padEnd(14)} ${detail}\n`);
    }
  });

program
  .command("start")
  .description("run the whole platform locally from the synthesized template (Ctrl-C stops everything it started)")
  .option("--port <port>", "port of the local HTTP API", process.env.API_PORT ?? "3000")
  .option("--no-synth", "reuse cdk.out instead of synthesizing first")
  .action(async (options: { port: string; synth: boolean }) => {
    const began = Date.now();
    const platform = await startPlatform({
      log: report,
      apiPort: Number(options.port),
      skipSynth: !options.synth,
      localHandlers: [await consoleHandler({ log: report })],
    });
    const url = platform.runtime.apiUrl;
    report(`platform ready in ${((Date.now() - began) / 1000).toFixed(1)}s; Ctrl-C stops it`);
    process.stdout.write(
      [
        "",
        `API     ${url}  (OpenAPI: ${url}/openapi.json)`,
        `Console ${url}${CONSOLE_PATH}`,
        `Metrics ${url}/metrics  (Prometheus; the console's Pipeline view)`,
        "CLI     npx datadistiller ingest FILES --wait",
        '        npx datadistiller search "your question"',
        "",
      ].join("\n"),
    );
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      report(`${signal}: stopping`);
      await platform.stop();
      process.exit(0);
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });

program
  .command("token")
  .description("print a bearer token for a tenant, signed by the local issuer (last line of output)")
  .requiredOption("--tenant <name>", "the tenant the token speaks for")
  .option("--audience <audience>", "the API's JWT audience", "datadistiller")
  .option("--claim <claim>", "the claim that names the tenant", "tenant")
  .option("--expires-in <duration>", "lifetime, e.g. 12h", "12h")
  .action(async (options: { tenant: string; audience: string; claim: string; expiresIn: string }) => {
    const token = await mintToken({
      tenant: options.tenant,
      audience: options.audience,
      tenantClaim: options.claim,
      expiresIn: options.expiresIn,
    });
    process.stdout.write(`${token}\n`);
  });

program
  .command("redrive")
  .description("replay dead-lettered batches onto their topics once the cause is fixed (runs the redrive function)")
  .option("--tenant <name>", "only the dead letters of this tenant's jobs")
  .option("--dry-run", "list the dead letters without replaying them")
  .action(async (options: { tenant?: string; dryRun?: boolean }) => {
    const result = await invokeFunction(
      "redrive",
      { ...(options.tenant ? { tenant: options.tenant } : {}), dryRun: options.dryRun === true },
      report,
    );
    if (!result.ok) throw new StackError(`redrive failed: ${result.error.errorMessage}`);
    process.stdout.write(`${JSON.stringify(result.value, null, 2)}\n`);
  });

program.parseAsync().catch((error: unknown) => {
  report(error instanceof StackError ? `error: ${error.message}` : String((error as Error)?.stack ?? error));
  process.exitCode = 1;
});
