/** When the jobs list polls (no DOM here, so it is unit-tested under Node). */

export const TERMINAL: ReadonlySet<string> = new Set(["COMPLETED", "FAILED"]);

/** What a polling tick needs to know of a row. */
export interface PollState {
  /** 0..1 while the browser is sending the file. */
  uploading?: number;
  localError?: string;
  /** A status request is in flight. */
  polling: boolean;
  job?: { state: string };
}

/**
 * One polling tick: the rows to ask about now (waiting for their job, no request in flight), and
 * whether polling can stop: only when no row is uploading or waiting, whether or not its request
 * is in flight (a slow answer must not end the polling of a job that is still running).
 */
export function pollTick(rows: ReadonlyMap<string, PollState>): { due: string[]; idle: boolean } {
  const due: string[] = [];
  let idle = true;
  for (const [id, row] of rows) {
    if (row.uploading !== undefined) idle = false;
    else if (!row.localError && !TERMINAL.has(row.job?.state ?? "")) {
      idle = false;
      if (!row.polling) due.push(id);
    }
  }
  return { due, idle };
}
