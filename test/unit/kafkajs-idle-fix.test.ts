import { describe, expect, it } from "vitest";
import "../../shared/adapters/kafkajs-idle-fix.ts";
// @ts-expect-error kafkajs ships no types for its internals
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

interface QueueState {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests: () => void;
}

const schedule = (queue: QueueState) =>
  (
    RequestQueue as { prototype: { scheduleCheckPendingRequests(this: QueueState): void } }
  ).prototype.scheduleCheckPendingRequests.call(queue);

const queue = (state: Partial<QueueState>): QueueState => ({
  pending: [],
  throttledUntil: -1,
  throttleCheckTimeoutId: null,
  checkPendingRequests: () => {},
  ...state,
});

describe("kafkajs request queue while idle", () => {
  it("schedules no check when nothing is pending and nothing is throttled (no 1 ms timer loop)", () => {
    const idle = queue({});
    schedule(idle);
    expect(idle.throttleCheckTimeoutId).toBeNull();
  });

  it("still schedules a check for pending requests, and for the end of a throttle", () => {
    const pending = queue({ pending: [{}] });
    schedule(pending);
    expect(pending.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(pending.throttleCheckTimeoutId ?? undefined);

    const throttled = queue({ throttledUntil: Date.now() + 60_000 });
    schedule(throttled);
    expect(throttled.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(throttled.throttleCheckTimeoutId ?? undefined);
  });
});
