import { readFileSync } from "node:fs";
import type { DataDistillerClient, MigrationRequest, MigrationView } from "../api-client.ts";
import { print, printJson } from "../output.ts";

/** `collections show NAME`: indexes, the active one and its model, the migration if any. */
export async function showCollectionCommand(client: DataDistillerClient, name: string, options: { json?: boolean }) {
  const view = await client.collection(name);
  if (options.json) return printJson(view);
  print(`collection ${view.collection}: searches index ${view.activeIndex} (${view.model ?? "no model yet"})`);
  for (const index of view.indexes) {
    print(
      `  index ${index.index}${index.active ? " (active)" : ""}: ${index.model ?? "-"}, ${index.chunks} chunks in ${index.segments} segments`,
    );
  }
  if (view.migration) printMigration(view.migration);
}

/** `collections drop-index NAME INDEX` */
export async function dropIndexCommand(
  client: DataDistillerClient,
  name: string,
  index: string,
  options: { json?: boolean },
) {
  const result = await client.dropIndex(name, index);
  if (options.json) printJson(result);
  else print(`dropped index ${result.dropped} of ${name} (${result.segments} segments deleted)`);
}

/**
 * `migrate start NAME --model ID [--queries FILE] [--wait]`: FILE is JSON lines or a JSON array of
 * {query, relevant: [documentId…] | {documentId: grade}} for the evaluation gate.
 */
export async function startMigrationCommand(
  client: DataDistillerClient,
  name: string,
  options: { model: string; queries?: string; wait?: boolean; timeout: number; json?: boolean },
) {
  const request: MigrationRequest = { model: options.model };
  if (options.queries) request.evaluation = { queries: readQueries(options.queries) };
  let view = await client.startMigration(name, request);
  if (!options.json) print(`migration ${view.migrationId}: ${name} from ${view.from.model} to ${view.to.model}`);
  if (options.wait) view = await waitForMigration(client, name, view, options);
  if (options.json) printJson(view);
  else printMigration(view);
}

/** `migrate status NAME` */
export async function migrationStatusCommand(
  client: DataDistillerClient,
  name: string,
  options: { wait?: boolean; timeout: number; json?: boolean },
) {
  let view = await currentMigration(client, name);
  if (options.wait) view = await waitForMigration(client, name, view, options);
  if (options.json) printJson(view);
  else printMigration(view);
}

/** `migrate cutover NAME [--force]` and `migrate rollback NAME` */
export async function switchCommand(
  client: DataDistillerClient,
  name: string,
  action: "cutover" | "rollback",
  options: { force?: boolean; json?: boolean },
) {
  const current = await currentMigration(client, name);
  const view =
    action === "cutover"
      ? await client.cutOver(name, current.migrationId, options.force ? { force: true } : {})
      : await client.rollBack(name, current.migrationId);
  if (options.json) return printJson(view);
  const active = action === "cutover" ? view.to : view.from;
  print(`${name} now searches index ${active.index} (${active.model})`);
  printMigration(view);
}

async function currentMigration(client: DataDistillerClient, name: string): Promise<MigrationView> {
  const { migration } = await client.collection(name);
  if (!migration) throw new Error(`collection ${name} has no migration`);
  return migration;
}

async function waitForMigration(
  client: DataDistillerClient,
  name: string,
  view: MigrationView,
  options: { timeout: number; json?: boolean },
): Promise<MigrationView> {
  const deadline = Date.now() + options.timeout * 1000;
  let last = "";
  let current = view;
  while (current.state === "RUNNING") {
    if (Date.now() > deadline)
      throw new Error(`migration ${view.migrationId} still running after ${options.timeout} s`);
    const line = progress(current);
    if (!options.json && line !== last) process.stderr.write(`${line}\n`);
    last = line;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    current = await client.migration(name, view.migrationId);
  }
  return current;
}

const progress = (view: MigrationView) =>
  view.job
    ? `  ${view.state}: ${view.job.counts.chunksIndexed}/${view.job.counts.chunksTotal} chunks re-embedded and indexed (${view.job.percentages.indexed}%)`
    : `  ${view.state}`;

function printMigration(view: MigrationView) {
  print(
    `migration ${view.migrationId}: index ${view.from.index} (${view.from.model}) → index ${view.to.index} (${view.to.model})`,
  );
  print(progress(view));
  if (view.job?.error) print(`  reason: ${view.job.error}`);
  const evaluation = view.evaluation;
  if ("better" in evaluation) {
    print(
      `  evaluation on ${evaluation.queries} labelled queries (hybrid, nDCG@10 / Recall@10 / MRR@10): old ${evaluation.old["ndcg@10"]} / ${evaluation.old["recall@10"]} / ${evaluation.old["mrr@10"]}, new ${evaluation.new["ndcg@10"]} / ${evaluation.new["recall@10"]} / ${evaluation.new["mrr@10"]} → ${evaluation.better === "same" ? "about the same" : `${evaluation.better} is better`}`,
    );
  } else if ("pending" in evaluation)
    print(`  evaluation: ${evaluation.queries} labelled queries, run once the new index is ready`);
  else print(`  evaluation: ${evaluation.note}`);
}

function readQueries(file: string): NonNullable<MigrationRequest["evaluation"]>["queries"] {
  const text = readFileSync(file, "utf8").trim();
  const parsed = text.startsWith("[")
    ? (JSON.parse(text) as unknown[])
    : text
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as unknown);
  return parsed as NonNullable<MigrationRequest["evaluation"]>["queries"];
}
