import { CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import type { Construct } from "constructs";
import { NativeLayer } from "../layers/native-layer.ts";
import type { SingleFunctionName } from "../shared/adapters/config.ts";
import { Api } from "./api.ts";
import type { DataDistillerConfig } from "./config.ts";
import { applyNagSuppressions } from "./nag.ts";
import { Network } from "./network.ts";
import { CollectionsApi } from "./stages/collections-api.ts";
import { CompactionStage } from "./stages/compaction.ts";
import { EmbedStage } from "./stages/embed.ts";
import { IndexStage } from "./stages/index.ts";
import { Operations } from "./stages/operations.ts";
import { SearchApi } from "./stages/search-api.ts";
import { SearchShardsStage } from "./stages/search-shards.ts";
import { SplitStage } from "./stages/split.ts";
import { UploadApi } from "./stages/upload-api.ts";
import { Storage } from "./storage.ts";
import { Streaming, TOPICS } from "./streaming.ts";

export interface DataDistillerStackProps extends StackProps {
  /** The validated deployment configuration (CDK context, see config.ts). */
  readonly config: DataDistillerConfig;
  /**
   * Directory of the native layer, built by `npm run build:layer`.
   * @default "<repo>/.local/layer"
   */
  readonly layerDirectory?: string;
}

/**
 * The whole platform in one stack (`DataDistiller-<stage>`): one template for the local runtime
 * to read, one `cdk deploy`, and no cross-stack exports to untangle on teardown. The shared parts
 * (Network, Storage, Streaming, the native layer, the HTTP API) come first; then one construct per
 * stage (UploadApi, Split, Embed, Index, SearchApi, Operations), each with its functions, their
 * environment, permissions, routes and event sources. Every setting comes from the configuration
 * here; the constructs' props carry their own documented defaults.
 */
export class DataDistillerStack extends Stack {
  readonly network: Network;
  readonly storage: Storage;
  readonly streaming: Streaming;
  readonly nativeLayer: NativeLayer;
  readonly api: Api;
  readonly uploadApi: UploadApi;
  readonly split: SplitStage;
  readonly embed: EmbedStage;
  readonly index: IndexStage;
  readonly compaction: CompactionStage;
  readonly searchApi: SearchApi;
  readonly collectionsApi: CollectionsApi;
  readonly searchShards: SearchShardsStage;
  readonly operations: Operations;
  /** Every function of the pipeline and the API, by name. */
  readonly functions: Record<SingleFunctionName, nodejs.NodejsFunction>;
  readonly config: DataDistillerConfig;

  constructor(scope: Construct, id: string, props: DataDistillerStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.config = config;
    const removalPolicy = config.removalPolicy === "destroy" ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logRetentionDays = config.logRetentionDays;
    const defaults = { stage: config.stage, logRetentionDays, removalPolicy };
    // Kafka consumers reserve one execution per partition of their topic (when the account can).
    const reserve = (partitions: number) => (config.reserveConcurrency ? partitions : undefined);

    this.network = new Network(this, "Network", {
      azCount: config.azCount,
      natGateways: config.natGateways,
      interfaceEndpoints: config.vpcInterfaceEndpoints,
      logRetentionDays,
      removalPolicy,
    });
    this.storage = new Storage(this, "Storage", {
      corsAllowedOrigins: config.corsAllowedOrigins,
      uploadRetentionDays: config.uploadRetentionDays,
      deadLetterRetentionDays: config.deadLetterRetentionDays,
      removalPolicy,
    });
    this.streaming = new Streaming(this, "Streaming", {
      stage: config.stage,
      network: this.network,
      mskMode: config.mskMode,
      brokerInstanceType: config.mskBrokerInstanceType,
      brokerCount: config.mskBrokersPerAz * config.azCount,
      brokerVolumeGiB: config.mskBrokerVolumeGiB,
      kafkaVersion: config.mskKafkaVersion,
      partitions: {
        [TOPICS.documentsUploaded]: config.partitionsDocumentsUploaded,
        [TOPICS.chunksToEmbed]: config.partitionsChunksToEmbed,
        [TOPICS.chunksEmbedded]: config.partitionsChunksEmbedded,
      },
      logRetentionDays,
      removalPolicy,
    });
    this.nativeLayer = new NativeLayer(this, "NativeLayer", { directory: props.layerDirectory, removalPolicy });
    this.api = new Api(this, "Api", {
      stage: config.stage,
      jwtIssuer: config.jwtIssuer,
      jwtAudience: config.jwtAudience,
      corsAllowedOrigins: config.corsAllowedOrigins,
      throttle: { rateLimit: config.apiThrottleRateLimit, burstLimit: config.apiThrottleBurstLimit },
      logRetentionDays,
      removalPolicy,
    });

    const shared = { network: this.network, storage: this.storage, streaming: this.streaming };
    const models = {
      nativeLayer: this.nativeLayer.layer,
      modelLocation: config.modelLocation,
      embeddingModel: config.embeddingModel,
      embeddingModels: config.embeddingModels,
    };
    const consumer = {
      streaming: this.streaming,
      deadLetterBucket: this.storage.deadLetterBucket,
      retryAttempts: config.esmRetryAttempts,
      minimumPollers: config.esmMinimumPollers,
    };
    const jobs = { jobRetentionDays: config.jobRetentionDays };

    this.uploadApi = new UploadApi(this, "UploadApi", {
      ...defaults,
      ...shared,
      ...jobs,
      api: this.api,
      allowedContentTypes: config.allowedContentTypes,
      maxUploadBytes: config.maxUploadBytes,
      uploadMethod: config.uploadMethod,
      uploadUrlTtlSeconds: config.uploadUrlTtlSeconds,
      tenantClaim: config.tenantClaim,
      stallAfterMinutes: config.stallAfterMinutes,
    });
    this.split = new SplitStage(this, "Split", {
      ...defaults,
      ...shared,
      ...consumer,
      ...models,
      ...jobs,
      memorySize: config.splitMemoryMb,
      reservedConcurrency: reserve(config.partitionsDocumentsUploaded),
      batchSize: config.splitBatchSize,
      chunksPerGroup: config.chunksPerGroup,
    });
    this.embed = new EmbedStage(this, "Embed", {
      ...defaults,
      ...shared,
      ...consumer,
      ...models,
      ...jobs,
      memorySize: config.embedMemoryMb,
      reservedConcurrency: reserve(config.partitionsChunksToEmbed),
      batchSize: config.embedBatchSize,
    });
    this.compaction = new CompactionStage(this, "Compaction", {
      ...defaults,
      storage: this.storage,
      nativeLayer: this.nativeLayer.layer,
      memorySize: config.compactMemoryMb,
      mergeFactor: config.mergeFactor,
      maxSegmentChunks: config.maxSegmentChunks,
      annMinChunks: config.annMinChunks,
    });
    this.index = new IndexStage(this, "Index", {
      ...defaults,
      ...consumer,
      ...jobs,
      storage: this.storage,
      network: this.network,
      streaming: this.streaming,
      nativeLayer: this.nativeLayer.layer,
      chunksPerGroup: config.chunksPerGroup,
      memorySize: config.indexMemoryMb,
      reservedConcurrency: reserve(config.partitionsChunksEmbedded),
      batchSize: config.indexBatchSize,
      compaction: this.compaction,
    });
    this.searchShards = new SearchShardsStage(this, "SearchShards", {
      ...defaults,
      storage: this.storage,
      nativeLayer: this.nativeLayer.layer,
      count: config.searchShardFunctions,
      shardMaxChunks: config.shardMaxChunks,
      memorySize: config.searchMemoryMb,
      ephemeralStorageMiB: config.searchCacheMiB,
    });
    this.searchApi = new SearchApi(this, "SearchApi", {
      ...defaults,
      ...models,
      api: this.api,
      storage: this.storage,
      memorySize: config.searchMemoryMb,
      tenantClaim: config.tenantClaim,
      rerankerLocation: config.rerankerLocation,
      ephemeralStorageMiB: config.searchCacheMiB,
      shards: this.searchShards,
    });
    this.collectionsApi = new CollectionsApi(this, "CollectionsApi", {
      ...defaults,
      ...shared,
      ...models,
      ...jobs,
      api: this.api,
      tenantClaim: config.tenantClaim,
    });
    const stageFunctions = {
      "upload-url": this.uploadApi.uploadUrl,
      "on-upload": this.uploadApi.onUpload,
      split: this.split.function,
      embed: this.embed.function,
      index: this.index.function,
      compact: this.compaction.function,
      search: this.searchApi.search,
      "job-status": this.uploadApi.jobStatus,
      "delete-document": this.searchApi.deleteDocument,
      collections: this.collectionsApi.function,
      "migration-fanout": this.collectionsApi.fanOut,
      "api-meta": this.api.metaFunction,
    };
    this.operations = new Operations(this, "Operations", {
      ...defaults,
      ...shared,
      ...jobs,
      api: this.api,
      functions: stageFunctions,
      shardFunctions: this.searchShards.functions,
      reserveSingleRunConcurrency: config.reserveConcurrency,
      maxUploadBytes: config.maxUploadBytes,
      tenantClaim: config.tenantClaim,
      alarmEmail: config.alarmEmail,
    });
    this.functions = {
      ...stageFunctions,
      "dead-letter": this.operations.deadLetter,
      redrive: this.operations.redrive,
      sweeper: this.operations.sweeper,
      "dead-letter-api": this.operations.deadLetterApi,
    };

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
