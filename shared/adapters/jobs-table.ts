/**
 * The jobs table's shape, defined once: the stack declares it (infra/storage.ts), the local
 * tools create it from here (localstack/platform/jobs-table.ts), and the stores write items
 * keyed this way (job-store.ts, manifest-store.ts).
 *
 * Single-table design: jobs (pk JOB#<id>), per-batch markers, per-tenant job listings (gsi1) and
 * the collection manifests (pk COLLECTION#<tenant>#<collection>, sk MANIFEST). Every key is a string.
 */
export const JOBS_TABLE = {
  partitionKey: "pk",
  sortKey: "sk",
  /** Finished jobs carry an epoch-seconds expiry; DynamoDB's TTL deletes them after it. */
  timeToLiveAttribute: "expiresAt",
  /** A tenant's jobs, newest first: gsi1pk TENANT#<tenant>, gsi1sk JOB#<created>#<id>; whole items projected. */
  tenantJobsIndex: { indexName: "gsi1", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  /**
   * Jobs waiting for their upload, by when the sweeper looks at them: gsi2pk UPLOADCHECK#<shard>,
   * gsi2sk <check time>. Sparse: only a job in PENDING_UPLOAD carries these attributes (every
   * move on removes them), so an upload that arrives leaves nothing for the sweeper. Keys only.
   */
  uploadChecksIndex: { indexName: "gsi2", partitionKey: "gsi2pk", sortKey: "gsi2sk" },
} as const;
