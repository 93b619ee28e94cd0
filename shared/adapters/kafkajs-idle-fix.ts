/**
 * Stops kafkajs 2.2.4 from spinning while idle. After every response its request queue schedules
 * a check of pending requests at `throttledUntil - now`, which is negative when nothing is
 * throttled: Node runs it after 1 ms, and the check schedules the next one, so every open
 * connection runs a 1 ms timer loop for ever (kafkajs issues #1556, #1704, #1751; fixes proposed,
 * never released). Measured here: a connected, idle producer spent 26 ms of CPU per second; each
 * function's producer and each local event source's consumer has one or two connections.
 * Imported for its effect by whatever creates Kafka clients in a process; with nothing pending
 * and no throttle there is nothing to check, and anything else behaves as before.
 */
// @ts-expect-error kafkajs ships no types for its internals
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

interface Queue {
  pending: unknown[];
  throttledUntil: number;
}

const prototype = (RequestQueue as { prototype?: Record<string, unknown> } | undefined)?.prototype;
const schedule = prototype?.scheduleCheckPendingRequests;
if (prototype && typeof schedule === "function" && !prototype.idleFixed) {
  prototype.idleFixed = true;
  prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: Queue) {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
}
