/**
 * `datadistiller`: the command line of DataDistiller's public HTTP API (ingest, search, jobs,
 * delete, dead letters). It speaks only HTTP through the API client, so it works the same against
 * the local platform (`npm start`) and a deployed stage.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  dropIndexCommand,
  migrationStatusCommand,
  showCollectionCommand,
  startMigrationCommand,
  switchCommand,
} from "./commands/collections.ts";
import { dlqListCommand, dlqRedriveCommand } from "./commands/dlq.ts";
import { deleteCommand } from "./commands/documents.ts";
import { ingestCommand } from "./commands/ingest.ts";
import { jobsCommand } from "./commands/jobs.ts";
import { searchCommand } from "./commands/search.ts";
import { connect, type GlobalOptions, resolveEndpoint } from "./context.ts";
import { describeError } from "./errors.ts";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const positiveInt = (max: number) => (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > max) {
    throw new InvalidArgumentError(`expected a whole number from 1 to ${max}`);
  }
  return number;
};

/** The global options (wherever they appear on the line) merged with the command's own. */
const optionsOf = <T>(command: Command) => command.optsWithGlobals<GlobalOptions & T>();
const json = () => new Option("--json", "print one JSON document on stdout (for scripts)");

const program = new Command("datadistiller")
  .description("Ingest documents into DataDistiller and search them")
  .version(version)
  .option("--endpoint <url>", "API URL (default: $DATADISTILLER_ENDPOINT, else the local platform)")
  .option("--token <jwt>", "bearer token (default: $DATADISTILLER_TOKEN; minted locally for a local endpoint)")
  .option("--tenant <name>", "tenant of the token minted for a local endpoint", "local")
  .configureHelp({ showGlobalOptions: true })
  // Usage errors exit with 2 (see below) instead of commander's own exit.
  .exitOverride();

program
  .command("ingest")
  .description("upload files (paths or globs) and, with --wait, follow their jobs to the end")
  .argument("<files...>", 'files or quoted globs, e.g. "docs/**/*.pdf" (pdf, txt, md, html)')
  .option("--collection <name>", "collection to add the documents to (default: default)")
  .option("--wait", "follow every job until it completes or fails")
  .option("--timeout <seconds>", "give up waiting after this long", positiveInt(86_400), 900)
  .option("--concurrency <n>", "uploads in flight at once", positiveInt(64), 4)
  .addOption(json())
  .addHelpText(
    "after",
    "\nExit code 1 when any file is refused, fails to upload or (with --wait) its job fails or times out.",
  )
  .action(async (files: string[], _options, command: Command) => {
    const options = optionsOf<{
      collection?: string;
      wait?: boolean;
      timeout: number;
      concurrency: number;
      json?: boolean;
    }>(command);
    const ok = await ingestCommand(await connect(options), files, options);
    if (!ok) process.exitCode = 1;
  });

program
  .command("search")
  .description("ranked passages for a query, with highlighted snippets and per-stage scores")
  .argument("<query>", "the query text (quote it)")
  .addOption(new Option("--mode <mode>", "retrieval").choices(["hybrid", "dense", "bm25"]).default("hybrid"))
  .option("--k <n>", "number of results", positiveInt(100), 10)
  .option("--no-rerank", "skip the cross-encoder reranking")
  .option("--collection <name>", "collection to search (default: default)")
  .option("--cursor <cursor>", "the next page of a previous search")
  .addOption(json())
  .action(async (query: string, _options, command: Command) => {
    const options = optionsOf<Parameters<typeof searchCommand>[2]>(command);
    await searchCommand(await connect(options), query, options);
  });

program
  .command("jobs")
  .description("list your jobs, newest first, or show one job in detail")
  .argument("[jobId]", "a job to show in detail")
  .option("--limit <n>", "jobs to list (at most 100)", positiveInt(100), 20)
  .option("--cursor <cursor>", "the next page of a previous listing")
  .option(
    "--trace",
    "with a job id: its path through the stages (who moved it, when, how long each took) and where its logs are",
  )
  .addOption(json())
  .action(async (jobId: string | undefined, _options, command: Command) => {
    const options = optionsOf<{ limit: number; cursor?: string; json?: boolean; trace?: boolean }>(command);
    await jobsCommand(await connect(options), jobId, options);
  });

program
  .command("delete")
  .description("remove a document from search")
  .argument("<documentId>", "the document's id (see `ingest` or `search` output)")
  .addOption(json())
  .action(async (documentId: string, _options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await deleteCommand(await connect(options), documentId, options);
  });

const collections = program.command("collections").description("a collection's indexes and embedding model");

collections
  .command("show")
  .description("the collection's indexes, the active one and its model, its migration")
  .argument("<name>", "the collection")
  .addOption(json())
  .action(async (name: string, _options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await showCollectionCommand(await connect(options), name, options);
  });

collections
  .command("drop-index")
  .description("drop an index that is not the active one (the old one after a cut-over, or a migration's to cancel it)")
  .argument("<name>", "the collection")
  .argument("<index>", "the index id (see `collections show`)")
  .addOption(json())
  .action(async (name: string, index: string, _options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await dropIndexCommand(await connect(options), name, index, options);
  });

const migrate = program.command("migrate").description("move a collection to another embedding model without downtime");

migrate
  .command("start")
  .description("re-embed the collection into a new index in the background; search keeps the current one")
  .argument("<name>", "the collection")
  .requiredOption("--model <id>", "the embedding model to move to (see the README's Models)")
  .option(
    "--queries <file>",
    "labelled queries for the evaluation gate: JSON lines of {query, relevant: [documentId...]}",
  )
  .option("--wait", "follow the re-embedding until it is ready")
  .option("--timeout <seconds>", "give up waiting after this long", positiveInt(86_400), 3600)
  .addOption(json())
  .action(async (name: string, _options, command: Command) => {
    const options = optionsOf<{ model: string; queries?: string; wait?: boolean; timeout: number; json?: boolean }>(
      command,
    );
    await startMigrationCommand(await connect(options), name, options);
  });

migrate
  .command("status")
  .description("the migration's progress and its evaluation (old vs new index)")
  .argument("<name>", "the collection")
  .option("--wait", "follow it until it is ready")
  .option("--timeout <seconds>", "give up waiting after this long", positiveInt(86_400), 3600)
  .addOption(json())
  .action(async (name: string, _options, command: Command) => {
    const options = optionsOf<{ wait?: boolean; timeout: number; json?: boolean }>(command);
    await migrationStatusCommand(await connect(options), name, options);
  });

migrate
  .command("cutover")
  .description("make the new index answer searches (one switch; the old index is kept for roll-back)")
  .argument("<name>", "the collection")
  .option("--force", "cut over even when the evaluation gate found the new index worse")
  .addOption(json())
  .action(async (name: string, _options, command: Command) => {
    const options = optionsOf<{ force?: boolean; json?: boolean }>(command);
    await switchCommand(await connect(options), name, "cutover", options);
  });

migrate
  .command("rollback")
  .description("make the old index answer searches again")
  .argument("<name>", "the collection")
  .addOption(json())
  .action(async (name: string, _options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await switchCommand(await connect(options), name, "rollback", options);
  });

const dlq = program.command("dlq").description("batches the pipeline gave up on (dead letters)");

dlq
  .command("list")
  .description("list the dead letters")
  .addOption(json())
  .action(async (_options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await dlqListCommand(await connect(options), options);
  });

dlq
  .command("redrive")
  .description("replay every dead letter onto its topic (once the cause is fixed)")
  .addOption(json())
  .action(async (_options, command: Command) => {
    const options = optionsOf<{ json?: boolean }>(command);
    await dlqRedriveCommand(await connect(options), options);
  });

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander already printed help or the usage error.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    let endpoint: string | undefined;
    try {
      endpoint = resolveEndpoint(program.opts<GlobalOptions>().endpoint);
    } catch {
      // the endpoint itself was the problem
    }
    for (const line of describeError(error, endpoint).split("\n")) process.stderr.write(`error: ${line}\n`);
    if (process.env.DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = 1;
  }
}
