import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { resolveMavenClasspath } from "./maven.ts";
import { stateDir } from "./paths.ts";
import { run, runningPid, spawnDetached, stopProcess, waitUntil } from "./process.ts";
import type { LocalService } from "./service.ts";

/** Pinned: kafkajs is proven against 3.x, and Kafka 4.x removed the old protocol versions it speaks. */
export const KAFKA_VERSION = "3.9.1";
const port = Number(process.env.KAFKA_PORT ?? 9092);
const controllerPort = Number(process.env.KAFKA_CONTROLLER_PORT ?? port + 1);
const home = join(stateDir, "kafka");
/** Any fixed base64 UUID works for a single-node dev cluster; it only has to match the formatted log dir. */
const clusterId = "ZGF0YWRpc3RpbGxlci1kZXY";

let classpath = "";

export const kafka: LocalService = {
  name: "kafka",
  port,
  externalEnv: "KAFKA_BROKERS",

  async install() {
    classpath = join(
      resolveMavenClasspath("kafka", [
        `org.apache.kafka:kafka_2.13:${KAFKA_VERSION}`,
        "org.slf4j:slf4j-reload4j:1.7.36",
      ]),
      "*",
    );
  },

  async start() {
    mkdirSync(home, { recursive: true });
    const properties = join(home, "server.properties");
    const log4j = join(home, "log4j.properties");
    writeFileSync(properties, serverProperties(join(home, "data")));
    writeFileSync(log4j, LOG4J);
    // C1 only and the serial GC, as for DynamoDB Local: a broker with a light load starts in
    // two thirds of the time and leaves the CPU to the functions.
    const java = [
      "-Xms256m",
      "-Xmx1g",
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      `-Dlog4j.configuration=file:${log4j}`,
      "-cp",
      classpath,
    ];
    // KRaft needs its log directory formatted once with a cluster id.
    if (!existsSync(join(home, "data", "meta.properties"))) {
      run("java", [...java, "kafka.tools.StorageTool", "format", "-t", clusterId, "-c", properties]);
    }
    spawnDetached("kafka", "java", [...java, "kafka.Kafka", properties]);
    await waitUntil("kafka", () => kafka.isReady());
  },

  async isReady() {
    const admin = new Kafka({
      clientId: "datadistiller-stack-probe",
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 1000,
    }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  },

  env: () => ({ KAFKA_BROKERS: `127.0.0.1:${port}` }),
};

function serverProperties(logDir: string): string {
  return `# Written by localstack/servers/kafka.ts: a single combined broker + controller in KRaft mode.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controllerPort}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${logDir}
# Topics are declared by the template and created by the provisioner, as in MSK.
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Consumer groups start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
`;
}

const LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
`;

/**
 * Stops the broker this checkout started (a controlled shutdown, as in a rolling restart or a
 * failover) and keeps its data; `startBroker` brings it back on the same port with the same topics
 * and offsets. For fault-injection tests. False when no broker of ours is running.
 */
export async function stopBroker(): Promise<boolean> {
  if (runningPid("kafka") === undefined) return false;
  return stopProcess("kafka");
}

export async function startBroker(): Promise<void> {
  await kafka.install();
  await kafka.start();
}
