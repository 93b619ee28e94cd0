import { CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { NativeLayer } from "../layers/native-layer.ts";
import { Api } from "./api.ts";
import { Compaction } from "./compaction.ts";
import type { DataDistillerConfig } from "./config.ts";
import { applyNagSuppressions } from "./nag.ts";
import { Network } from "./network.ts";
import { Operations } from "./operations.ts";
import { Pipeline } from "./pipeline.ts";
import { SearchShards } from "./search-shards.ts";
import { Storage } from "./storage.ts";
import { Streaming } from "./streaming.ts";

export interface DataDistillerStackProps extends StackProps {
  config: DataDistillerConfig;
  /** Directory of the native layer (default: `<repo>/.local/layer`, built by `npm run build:layer`). */
  layerDirectory?: string;
}

/**
 * The whole platform in one stack (`DataDistiller-<stage>`): one template for the local runtime
 * to read, one `cdk deploy`, and no cross-stack exports to untangle on teardown. The parts are
 * constructs (Network, Storage, Streaming, Pipeline, Api, Operations) and could become stacks.
 */
export class DataDistillerStack extends Stack {
  readonly network: Network;
  readonly storage: Storage;
  readonly streaming: Streaming;
  readonly nativeLayer: NativeLayer;
  readonly pipeline: Pipeline;
  readonly compaction: Compaction;
  readonly searchShards: SearchShards;
  readonly api: Api;
  readonly operations: Operations;
  readonly config: DataDistillerConfig;

  constructor(scope: Construct, id: string, props: DataDistillerStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.config = config;
    const removalPolicy = config.removalPolicy === "destroy" ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.network = new Network(this, "Network", { config, removalPolicy });
    this.storage = new Storage(this, "Storage", { config, removalPolicy });
    this.streaming = new Streaming(this, "Streaming", { config, network: this.network, removalPolicy });
    this.nativeLayer = new NativeLayer(this, "NativeLayer", { directory: props.layerDirectory, removalPolicy });
    this.pipeline = new Pipeline(this, "Pipeline", {
      config,
      network: this.network,
      storage: this.storage,
      streaming: this.streaming,
      nativeLayer: this.nativeLayer.layer,
      removalPolicy,
    });
    const common = {
      storage: this.storage,
      nativeLayer: this.nativeLayer.layer,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
    };
    this.compaction = new Compaction(this, "Compaction", {
      ...common,
      indexFunction: this.pipeline.functions.index,
      memoryMb: config.compactMemoryMb,
      mergeFactor: config.mergeFactor,
      maxSegmentChunks: config.maxSegmentChunks,
      annMinChunks: config.annMinChunks,
    });
    this.searchShards = new SearchShards(this, "SearchShards", {
      ...common,
      searchFunction: this.pipeline.functions.search,
      shardFunctions: config.searchShardFunctions,
      shardMaxChunks: config.shardMaxChunks,
      memoryMb: config.searchMemoryMb,
      ephemeralStorageMiB: config.searchCacheMiB,
    });
    this.api = new Api(this, "Api", { config, functions: this.pipeline.functions, removalPolicy });
    this.operations = new Operations(this, "Operations", {
      config,
      functions: this.pipeline.functions,
      httpApi: this.api.httpApi,
      deadLetterBucket: this.storage.deadLetterBucket,
      removalPolicy,
    });

    new CfnOutput(this, "ApiUrl", { value: this.api.url, description: "Base URL of the HTTP API" });
    new CfnOutput(this, "UploadBucketName", { value: this.storage.uploadBucket.bucketName });
    new CfnOutput(this, "IndexBucketName", { value: this.storage.indexBucket.bucketName });
    new CfnOutput(this, "DeadLetterBucketName", { value: this.storage.deadLetterBucket.bucketName });
    new CfnOutput(this, "JobsTableName", { value: this.storage.jobsTable.tableName });
    new CfnOutput(this, "KafkaClusterArn", { value: this.streaming.clusterArn });
    new CfnOutput(this, "KafkaBootstrapBrokers", { value: this.streaming.bootstrapBrokers });
    new CfnOutput(this, "AlarmTopicArn", { value: this.operations.alarmTopic.topicArn });

    applyNagSuppressions(this);
  }
}
