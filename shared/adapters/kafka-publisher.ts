import { generateAuthToken } from "aws-msk-iam-sasl-signer-js";
import { Kafka, logLevel, type Message, Partitioners, type Producer } from "kafkajs";
import "./kafkajs-idle-fix.ts";

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

  async publish(topic: string, messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = await this.connected();
    // acks=-1: a message is only acknowledged once the in-sync replicas have it.
    await producer.send({ topic, messages, acks: -1 });
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
    await this.connecting;
    return this.producer;
  }
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
