import type { S3EventRecord } from "aws-lambda";
import type { FunctionHost } from "./function-host.ts";
import type { LocalTargets } from "./provision.ts";

/** A bucket notification configuration to a function (from Custom::S3BucketNotifications). */
export interface S3NotificationSubscription {
  bucket: string;
  /** e.g. ["s3:ObjectCreated:*"] */
  events: string[];
  prefix: string;
  suffix: string;
  target: FunctionHost;
}

export interface S3Notifications {
  stop(): Promise<void>;
}

/** Lambda retries a failed asynchronous invocation twice; AWS waits about 1 then 2 minutes, locally seconds. */
const ASYNC_RETRY_DELAYS_MS = [1_000, 2_000];

const eventMatches = (pattern: string, eventName: string) => {
  const name = eventName.startsWith("s3:") ? eventName : `s3:${eventName}`;
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
};

/** The subscriptions an S3 event record triggers. */
export function matchingSubscriptions(subscriptions: S3NotificationSubscription[], record: S3EventRecord) {
  const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
  return subscriptions.filter(
    (subscription) =>
      subscription.bucket === record.s3.bucket.name &&
      subscription.events.some((pattern) => eventMatches(pattern, record.eventName)) &&
      key.startsWith(subscription.prefix) &&
      key.endsWith(subscription.suffix),
  );
}

/** Invokes a function asynchronously, as S3 does: one record per event, retried twice on error. */
export async function invokeAsync(
  target: FunctionHost,
  record: S3EventRecord,
  log: (line: string) => void,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const result = await target.invoke({ Records: [record] });
    if (result.ok) return;
    const delay = ASYNC_RETRY_DELAYS_MS[attempt];
    if (delay === undefined) {
      log(`s3 event for ${record.s3.object.key} failed ${attempt + 1} times in ${target.definition.name}: dropped`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

export async function startS3Notifications(
  _targets: LocalTargets,
  _subscriptions: S3NotificationSubscription[],
  _log: (line: string) => void,
): Promise<S3Notifications> {
  throw new Error("S3 notifications: transport not wired yet");
}
