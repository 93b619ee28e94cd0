/**
 * One local server of the stack (Kafka, S3, DynamoDB). Each module under services/ exports one
 * of these; the stack CLI (localstack/platform/cli.ts) starts, reports and stops them uniformly.
 */
export interface LocalService {
  /** Short name used for pid and log files: "kafka", "s3", "dynamodb". */
  readonly name: string;
  /** The TCP port it listens on locally. */
  readonly port: number;
  /**
   * The environment variable that, when already set, means the user brings this service
   * (their own container or AWS): the launcher then starts nothing for it.
   */
  readonly externalEnv: string;
  /** Fetches or builds what the server needs into the cache (idempotent, fast when cached). */
  install(): Promise<void>;
  /** Starts the server detached and resolves once it really answers requests. */
  start(): Promise<void>;
  /** True when a server on this service's endpoint answers requests. */
  isReady(): Promise<boolean>;
  /** The variables clients use to reach this service: `export NAME=value` lines. */
  env(): Record<string, string>;
}
