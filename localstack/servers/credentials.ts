/**
 * Credentials and region of the local stack. The S3 server is started with these as its root
 * user; DynamoDB Local accepts any. Users who point the variables elsewhere bring their own.
 */
export const localCredentials = {
  region: process.env.AWS_REGION ?? "us-east-1",
  accessKeyId: "datadistiller",
  secretAccessKey: "datadistiller-local-secret",
};

export const credentialEnv = (): Record<string, string> => ({
  AWS_REGION: localCredentials.region,
  AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
});
