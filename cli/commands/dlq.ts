import type { DataDistillerClient, DeadLetter } from "../api-client.ts";
import { table } from "../format.ts";
import { out, print, printJson } from "../output.ts";

/** Dead letters as a table, one batch a row. */
export function formatDeadLetters(deadLetters: DeadLetter[]): string {
  if (deadLetters.length === 0) return "no dead letters";
  return table(
    ["FAILED AT", "FUNCTION", "TOPIC", "RECORDS", "ATTEMPTS", "JOBS", "KEY"],
    deadLetters.map((letter) => [
      letter.failedAt,
      letter.functionName,
      letter.topic,
      String(letter.records),
      letter.attempts === undefined ? "–" : String(letter.attempts),
      letter.jobIds.join(",") || "–",
      letter.key,
    ]),
    { header: out.bold },
  );
}

export async function dlqListCommand(client: DataDistillerClient, options: { json?: boolean }) {
  const { deadLetters } = await client.deadLetters();
  if (options.json) printJson({ deadLetters });
  else print(formatDeadLetters(deadLetters));
}

export async function dlqRedriveCommand(client: DataDistillerClient, options: { json?: boolean }) {
  const { redriven } = await client.redriveDeadLetters();
  if (options.json) {
    printJson({ redriven });
    return;
  }
  if (redriven.length === 0) {
    print("nothing to redrive");
    return;
  }
  const records = redriven.reduce((sum, letter) => sum + letter.records, 0);
  const jobs = new Set(redriven.flatMap((letter) => letter.jobIds));
  print(
    `redriven ${redriven.length} batch${redriven.length === 1 ? "" : "es"} (${records} record${records === 1 ? "" : "s"}, ${jobs.size} job${jobs.size === 1 ? "" : "s"}) onto their topics:`,
  );
  for (const letter of redriven) print(`  ${letter.topic}  ${letter.records} records  ${letter.key}`);
  print(out.dim("follow the jobs with: datadistiller jobs <jobId>"));
}
