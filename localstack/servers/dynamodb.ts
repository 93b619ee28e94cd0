import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { localCredentials } from "./credentials.ts";
import { resolveMavenClasspath } from "./maven.ts";
import { stateDir } from "./paths.ts";
import { StackError, spawnDetached, waitUntil } from "./process.ts";
import type { LocalService } from "./service.ts";

export const DYNAMODB_LOCAL_VERSION = "3.3.1";
const port = Number(process.env.DYNAMODB_PORT ?? 8000);
const endpoint = `http://127.0.0.1:${port}`;

let lib = "";
let nativeDir = "";

export const dynamodb: LocalService = {
  name: "dynamodb",
  port,
  externalEnv: "DYNAMODB_ENDPOINT",

  async install() {
    lib = resolveMavenClasspath("dynamodb", [`software.amazon.dynamodb:DynamoDBLocal:${DYNAMODB_LOCAL_VERSION}`]);
    // sqlite4java loads its native library by a fixed, version-less name from java.library.path.
    nativeDir = join(lib, "..", "native");
    const target = join(nativeDir, "libsqlite4java-linux-amd64.so");
    if (!existsSync(target)) {
      const shipped = readdirSync(lib).find((file) => /^libsqlite4java-linux-amd64-.*\.so$/.test(file));
      if (!shipped) throw new StackError(`sqlite4java's Linux library is missing from ${lib}`);
      mkdirSync(nativeDir, { recursive: true });
      copyFileSync(join(lib, shipped), target);
    }
  },

  async start() {
    const data = join(stateDir, "dynamodb");
    mkdirSync(data, { recursive: true });
    spawnDetached("dynamodb", "java", [
      "-Xmx512m",
      // The quick JIT only, and the simplest collector: DynamoDB Local shares a small machine
      // with everything else, and C2 compilation cost more CPU in a test or benchmark run than
      // its faster code saved.
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      `-Djava.library.path=${nativeDir}`,
      "-cp",
      join(lib, "*"),
      "software.amazon.dynamodb.services.local.main.ServerRunner",
      "-port",
      String(port),
      "-dbPath",
      data,
      // One database whatever region or access key a client signs with, like one AWS account.
      "-sharedDb",
      "-disableTelemetry",
    ]);
    await waitUntil("dynamodb", () => dynamodb.isReady());
  },

  async isReady() {
    const client = new DynamoDBClient({ endpoint, region: localCredentials.region, credentials: localCredentials });
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      return true;
    } catch {
      return false;
    } finally {
      client.destroy();
    }
  },

  env: () => ({ DYNAMODB_ENDPOINT: endpoint }),
};
