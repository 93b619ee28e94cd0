import { Command } from "commander";
import { StackError } from "./services/process.ts";
import { shellExports, stackDown, stackStatus, stackUp } from "./stack.ts";

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

program.parseAsync().catch((error: unknown) => {
  report(error instanceof StackError ? `error: ${error.message}` : String((error as Error)?.stack ?? error));
  process.exitCode = 1;
});
