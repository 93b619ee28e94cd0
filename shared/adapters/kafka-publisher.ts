import { generateAuthToken } from "aws-msk-iam-sasl-signer-js";
import { Kafka, logLevel, type Message, Partitioners, type Producer } from "kafkajs";
import { MessageTooLarge } from "../domain/errors.ts";
import { isTransient } from "./faults.ts";
import "./kafkajs-idle-fix.ts";

/**
 * Most bytes (keys and values) one produce request carries. Kafka checks a partition's record
 * batch against the topic's max.message.bytes (1 MiB by default, locally and on MSK), and kafkajs
 * puts all of a request's messages for one partition into one record batch: so requests are cut
 * by bytes, not by count, and a single message must fit on its own.
 */
export const MAX_PRODUCE_BYTES = 900_000;

/**
 * Kafka clients for the functions. In AWS, MSK with IAM authentication (TLS + OAUTHBEARER tokens
 * signed with the function's role); locally, plaintext to the local broker.
 */
export function kafkaClient(options: {
  brokers: string[];
  saslMechanism: "aws-iam" | "none";
  region: string;
  clientId: string;
}): Kafka {
  const iam = options.saslMechanism === "aws-iam";
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    // Fail a connection attempt fast and retry a few times quickly; the stages retry transient
    // faults for minutes on top of this (shared/adapters/faults.ts), so a broker failover is
    // ridden out without kafkajs holding one request for long.
    connectionTimeout: 3_000,
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 5 },
    ...(iam
      ? {
          ssl: true,
          sasl: {
            mechanism: "oauthbearer" as const,
            oauthBearerProvider: async () => ({ value: (await generateAuthToken({ region: options.region })).token }),
          },
        }
      : {}),
  });
}

/** A producer kept connected across warm invocations. */
export class Publisher {
  private producer: Producer | undefined;
  private connecting: Promise<void> | undefined;

  constructor(private readonly kafka: Kafka) {}

  /**
   * Publishes in requests of at most MAX_PRODUCE_BYTES, in order. A message too large for the
   * topic on its own is a MessageTooLarge error (permanent); a fault reaching the cluster drops
   * the producer, so the next call connects afresh.
   */
  async publish(topic: string, messages: Message[]): Promise<void> {
    for (const request of produceRequests(messages, MAX_PRODUCE_BYTES)) {
      const producer = await this.connected();
      try {
        // acks=-1: a message is only acknowledged once the in-sync replicas have it.
        await producer.send({ topic, messages: request, acks: -1 });
      } catch (error) {
        if (isTransient(error)) await this.disconnect().catch(() => {});
        throw error;
      }
    }
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect();
    this.producer = undefined;
    this.connecting = undefined;
  }

  private async connected(): Promise<Producer> {
    if (!this.producer) {
      // The default (Java-compatible murmur2) partitioner, named so kafkajs does not warn about it.
      this.producer = this.kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      this.connecting = this.producer.connect();
    }
    try {
      await this.connecting;
    } catch (error) {
      this.producer = undefined;
      this.connecting = undefined;
      throw error;
    }
    return this.producer;
  }
}

const messageBytes = (message: Message) => byteLength(message.value) + byteLength(message.key) + 64; // + record overhead

const byteLength = (value: Message["value"] | Message["key"]) =>
  value === null || value === undefined ? 0 : typeof value === "string" ? Buffer.byteLength(value) : value.byteLength;

/** Messages cut into consecutive requests of at most `maxBytes`; a message over `maxBytes` alone is refused. */
export function produceRequests(messages: Message[], maxBytes: number): Message[][] {
  const requests: Message[][] = [];
  let request: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (size > maxBytes) throw new MessageTooLarge(size, maxBytes);
    if (bytes + size > maxBytes && request.length > 0) {
      requests.push(request);
      request = [];
      bytes = 0;
    }
    request.push(message);
    bytes += size;
  }
  if (request.length > 0) requests.push(request);
  return requests;
}

/** A publisher for a function, from its configuration (brokers, SASL mechanism, region). */
export const publisherFor = (
  clientId: string,
  config: { KAFKA_BROKERS: string[]; KAFKA_SASL_MECHANISM: "aws-iam" | "none"; AWS_REGION: string },
) =>
  new Publisher(
    kafkaClient({
      clientId,
      brokers: config.KAFKA_BROKERS,
      saslMechanism: config.KAFKA_SASL_MECHANISM,
      region: config.AWS_REGION,
    }),
  );
