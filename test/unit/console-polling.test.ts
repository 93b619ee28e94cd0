import { describe, expect, it } from "vitest";
import { type PollState, pollTick } from "../../console/src/polling.ts";

const rows = (entries: Record<string, PollState>) => new Map(Object.entries(entries));

describe("the console's job polling", () => {
  it("keeps polling while every running job's request is still in flight", () => {
    // Both answers are slower than a tick: nothing is due now, but the jobs are still running.
    const tick = pollTick(
      rows({
        a: { polling: true, job: { state: "PENDING_UPLOAD" } },
        b: { polling: true },
      }),
    );
    expect(tick).toEqual({ due: [], idle: false });
  });

  it("asks about each waiting job not already being asked about, and stops once all have ended", () => {
    expect(
      pollTick(
        rows({
          a: { polling: false, job: { state: "EMBEDDING" } },
          b: { polling: true, job: { state: "INDEXING" } },
          c: { polling: false, job: { state: "COMPLETED" } },
          d: { polling: false, localError: "upload failed" },
        }),
      ),
    ).toEqual({ due: ["a"], idle: false });
    expect(
      pollTick(
        rows({
          c: { polling: false, job: { state: "COMPLETED" } },
          f: { polling: false, job: { state: "FAILED" } },
        }),
      ),
    ).toEqual({ due: [], idle: true });
  });

  it("keeps the timer while a file is still being sent, and asks about it once it was sent", () => {
    expect(pollTick(rows({ a: { polling: false, uploading: 0.5 } }))).toEqual({ due: [], idle: false });
    expect(pollTick(rows({ a: { polling: false } }))).toEqual({ due: ["a"], idle: false });
  });
});
