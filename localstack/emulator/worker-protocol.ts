/** Messages between the function host and its warm worker processes. */

export interface InvocationContext {
  awsRequestId: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  logGroupName: string;
  logStreamName: string;
  /** Epoch milliseconds at which the invocation times out. */
  deadline: number;
}

export interface InvokeMessage {
  id: string;
  event: unknown;
  context: InvocationContext;
}

export interface LambdaError {
  errorType: string;
  errorMessage: string;
  stackTrace: string[];
}

export type WorkerReply = { id: string; ok: true; value: unknown } | { id: string; ok: false; error: LambdaError };
