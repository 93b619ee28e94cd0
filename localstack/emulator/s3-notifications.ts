import { createServer, type Server } from "node:http";
import type { S3EventRecord } from "aws-lambda";
import type { FunctionHost } from "./function-host.ts";

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

/**
 * Receives the S3 server's event webhook (the server POSTs every event of every bucket to one URL,
 * e.g. localstack/servers/s3.ts), turns each record into the exact shape AWS delivers, and invokes the
 * functions whose bucket notification configuration matches, asynchronously as S3 does.
 */
export async function startS3Notifications(
  subscriptions: S3NotificationSubscription[],
  log: (line: string) => void,
  webhook: string,
): Promise<S3Notifications> {
  if (!webhook) throw new Error("no S3 event webhook: the S3 server sends no notifications to the runtime");
  const url = new URL(webhook);
  const inFlight = new Set<Promise<void>>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      // Answer at once: the server's sender times out after a few seconds and never retries.
      response.writeHead(200).end();
      let body: { Records?: unknown[] };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return;
      }
      for (const raw of body.Records ?? []) {
        const record = awsS3Record(raw as S3EventRecord);
        for (const subscription of matchingSubscriptions(subscriptions, record)) {
          const delivery = invokeAsync(subscription.target, record, log).finally(() => inFlight.delete(delivery));
          inFlight.add(delivery);
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`port ${url.port} (S3_EVENTS_WEBHOOK=${webhook}) is in use: is another \`npm start\` running?`)
          : error,
      ),
    );
    server.listen(Number(url.port), url.hostname, resolve);
  });
  return {
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled(inFlight);
    },
  };
}

/** AWS URL-encodes event keys as a form does (spaces as "+"), path separators kept. */
const encodeKey = (key: string) =>
  key
    .split("/")
    .map((part) => encodeURIComponent(part).replace(/%20/g, "+"))
    .join("/");

/**
 * The record as AWS shapes it: event names without the "s3:" prefix, the key URL-encoded, the
 * bucket ARN of the bucket alone, the ETag without quotes, `principalId` spelled as AWS spells it,
 * no versionId on unversioned objects, no Glacier restore data on other events.
 */
export function awsS3Record(record: S3EventRecord): S3EventRecord {
  const raw = record as S3EventRecord & { glacierEventData?: unknown; userIdentity: { PrincipalId?: string } };
  const { glacierEventData: _glacier, ...rest } = raw;
  const owner = (record.s3.bucket.ownerIdentity as { PrincipalId?: string; principalId?: string }) ?? {};
  const { versionId, ...object } = record.s3.object as S3EventRecord["s3"]["object"] & { versionId?: string | null };
  const bucket = record.s3.bucket.name;
  return {
    ...rest,
    eventVersion: "2.1",
    eventName: record.eventName.replace(/^s3:/, ""),
    userIdentity: { principalId: raw.userIdentity?.PrincipalId ?? raw.userIdentity?.principalId ?? "" },
    s3: {
      ...record.s3,
      bucket: {
        name: bucket,
        ownerIdentity: { principalId: owner.PrincipalId ?? owner.principalId ?? "" },
        arn: `arn:aws:s3:::${bucket}`,
      },
      object: {
        ...object,
        key: encodeKey(record.s3.object.key),
        eTag: record.s3.object.eTag?.replace(/"/g, "") ?? "",
        ...(versionId ? { versionId } : {}),
      },
    },
  };
}
