/**
 * The local S3 server: Versity S3 Gateway (versitygw) with its posix backend, built from the Go
 * module proxy into the cache (`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`).
 * Buckets are directories under <state>/s3/data, objects are files, metadata lives in xattrs.
 *
 * What it gives us, checked against @aws-sdk/client-s3 3.117x with default settings: SigV4,
 * presigned PUT/GET, browser POST policies (content-length-range -> 400 EntityTooLarge, a failed
 * `eq $Content-Type` -> 403 AccessDenied), the SDK's default CRC32 checksums including aws-chunked
 * bodies with a trailing checksum, multipart uploads, If-Match / If-None-Match conditional writes.
 * The server checks the signing region: clients must sign with the region it was started with.
 *
 * Notifications: versitygw 1.8.0 has no per-bucket configuration (PutBucketNotificationConfiguration
 * answers 501 NotImplemented). It POSTs every event of every bucket, as JSON
 * (`Content-Type: application/json; charset=utf-8`), to one server-wide webhook:
 * S3_EVENTS_WEBHOOK, default http://127.0.0.1:9010/s3-events (set it to "" to send none). The local
 * runtime listens there and applies the template's bucket/event/prefix/suffix filters itself.
 * - One record per request, sent fire-and-forget from a goroutine: 3 s timeout, no retry, no
 *   ordering guarantee. Events sent while nobody listens are lost (the log shows
 *   "failed to send webhook event"), so the runtime must listen before uploads begin.
 * - At start-up versitygw POSTs a test event ({"Service":"S3","Event":"s3:TestEvent",...}) and
 *   refuses to start if the connection is refused. When nothing listens on a local webhook yet,
 *   start() answers in its place until the server is up, then lets go of the port.
 * - Differences from AWS the runtime should smooth over: the key is NOT URL-encoded (AWS encodes
 *   it, spaces as "+"), eTag keeps its quotes, `arn` holds "/bucket/key", request ids are empty,
 *   copy and multipart events report size 0, and for browser POST uploads (s3:ObjectCreated:Post)
 *   the key is EMPTY: only bucket, size and eTag identify the object. (POST also does not expand
 *   `${filename}` in the key.)
 *
 * A real event, captured from `PutObject` of "docs/my file ü.txt":
 *   {"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1",
 *     "eventTime":"2026-11-23T21:22:40Z","eventName":"s3:ObjectCreated:Put",
 *     "userIdentity":{"PrincipalId":"datadistiller"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
 *     "responseElements":{"x-amz-request-id":"","x-amz-id-2":""},
 *     "s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global",
 *       "bucket":{"name":"probe-1795468960792","ownerIdentity":{"PrincipalId":"datadistiller"},
 *                 "arn":"arn:aws:s3:::/probe-1795468960792/docs/my file ü.txt"},
 *       "object":{"key":"docs/my file ü.txt","size":14,"eTag":"\"b4a5461042ef29852deeeed1b097d8e9\"",
 *                 "versionId":null,"sequencer":"2"}},
 *     "glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}}}]}
 * and from a POST policy upload (note the empty key):
 *   {"Records":[{..."eventName":"s3:ObjectCreated:Post",...,"s3":{...,"bucket":{"name":"probe-1795468960792",
 *     ...,"arn":"arn:aws:s3:::/probe-1795468960792"},"object":{"key":"","size":50,
 *     "eTag":"\"6eb6a030bcce166534b95bc2ab45d9cf\"","versionId":null,"sequencer":"3"}},...}]}
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { credentialEnv, localCredentials } from "./credentials.ts";
import { cacheDir, stateDir } from "./paths.ts";
import { isPortOpen, requireCommand, run, StackError, spawnDetached, waitUntil } from "./process.ts";
import type { LocalService } from "./service.ts";

export const VERSITYGW_VERSION = "v1.8.0";
const versitygwPackage = "github.com/versity/versitygw/cmd/versitygw";
/** Versioned file name, so bumping the version rebuilds instead of reusing an old binary. */
const binary = join(cacheDir, "bin", `versitygw-${VERSITYGW_VERSION}`);

const port = Number(process.env.S3_PORT ?? 9000);
const endpoint = `http://127.0.0.1:${port}`;

export const DEFAULT_S3_EVENTS_WEBHOOK = "http://127.0.0.1:9010/s3-events";
/** Where the server POSTs bucket notifications; an empty value turns them off. */
export const s3EventsWebhook = process.env.S3_EVENTS_WEBHOOK ?? DEFAULT_S3_EVENTS_WEBHOOK;

export const s3: LocalService = {
  name: "s3",
  port,
  externalEnv: "S3_ENDPOINT",

  async install() {
    if (existsSync(binary)) return;
    requireCommand(
      "go",
      "Install Go 1.25 or newer (https://go.dev/dl/): the local S3 server (versitygw) is built with it.",
    );
    // Build into a scratch GOBIN and rename, so an interrupted build never leaves a partial binary.
    const scratch = join(cacheDir, "bin", `.build-versitygw-${VERSITYGW_VERSION}`);
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    run("go", ["install", `${versitygwPackage}@${VERSITYGW_VERSION}`], {
      cwd: scratch,
      env: { ...process.env, GOBIN: scratch },
    });
    renameSync(join(scratch, "versitygw"), binary);
    rmSync(scratch, { recursive: true, force: true });
  },

  async start() {
    if (!existsSync(binary)) throw new StackError(`the S3 server is not built yet (${binary}): run install() first`);
    const data = join(stateDir, "s3", "data");
    mkdirSync(data, { recursive: true });
    // No --keep-alive: with it, versitygw 1.8.0 misreads the request that follows an aws-chunked
    // upload on the same connection (the SDK's streamed PutObject), so every response closes its
    // connection and each call pays for a new one.
    const args = ["--port", `127.0.0.1:${port}`, "--region", localCredentials.region, "--quiet"];
    if (s3EventsWebhook) args.push("--event-webhook-url", s3EventsWebhook);
    args.push("posix", data);

    const standIn = s3EventsWebhook ? await standInForWebhook(s3EventsWebhook) : undefined;
    try {
      // Root credentials go through the environment so they do not show up in `ps`.
      spawnDetached("s3", binary, args, {
        env: {
          ROOT_ACCESS_KEY_ID: localCredentials.accessKeyId,
          ROOT_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
        },
      });
      await waitUntil("s3", () => s3.isReady(), { timeoutMs: 30_000 });
    } finally {
      standIn?.closeAllConnections();
      standIn?.close();
    }
  },

  /** A signed ListBuckets: proves the server speaks S3 and accepts our credentials and region. */
  async isReady() {
    const client = new S3Client({
      endpoint,
      region: localCredentials.region,
      credentials: localCredentials,
      forcePathStyle: true,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
    });
    try {
      await client.send(new ListBucketsCommand({}));
      return true;
    } catch {
      return false;
    } finally {
      client.destroy();
    }
  },

  env: () => ({ S3_ENDPOINT: endpoint, ...credentialEnv() }),
};

/**
 * versitygw POSTs a test event to its webhook at start-up and exits if the connection is refused.
 * The local runtime that owns the webhook usually starts after the stack, so while nothing listens
 * on a local http webhook we accept that test event ourselves; the caller closes the stand-in.
 */
async function standInForWebhook(url: string): Promise<Server | undefined> {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  const webhookPort = Number(target.port || 80);
  if (target.protocol !== "http:" || !["127.0.0.1", "localhost", "::1"].includes(host)) return undefined;
  if (await isPortOpen(webhookPort, host)) return undefined;
  // "Connection: close" keeps Go from pooling a connection to us for later events.
  const server = createServer((_request, response) => response.writeHead(204, { Connection: "close" }).end());
  return new Promise((resolve) => {
    server.once("error", () => resolve(undefined)); // someone took the port meanwhile: they answer
    server.listen(webhookPort, host, () => resolve(server));
  });
}
