/**
 * One warm "container" of a function: a child process that imports the handler once and then
 * serves invocations sent by the parent (function-host.ts) over IPC, one at a time, like a
 * Lambda execution environment.
 */
import { pathToFileURL } from "node:url";
import type { InvokeMessage, WorkerReply } from "./worker-protocol.ts";

const [modulePath, exportName] = [process.env.LOCAL_LAMBDA_MODULE, process.env.LOCAL_LAMBDA_EXPORT];
if (!modulePath || !exportName) throw new Error("LOCAL_LAMBDA_MODULE and LOCAL_LAMBDA_EXPORT must be set");

type Handler = (event: unknown, context: unknown) => Promise<unknown> | unknown;

let handlerPromise: Promise<Handler> | undefined;
const loadHandler = (): Promise<Handler> => {
  handlerPromise ??= import(pathToFileURL(modulePath).href).then((module: Record<string, unknown>) => {
    const handler = module[exportName];
    if (typeof handler !== "function") throw new Error(`${modulePath} does not export a function "${exportName}"`);
    return handler as Handler;
  });
  return handlerPromise;
};

const send = (reply: WorkerReply) => process.send?.(reply);

process.on("message", async (message: InvokeMessage) => {
  const { id, event, context } = message;
  const lambdaContext = {
    ...context,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, context.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  try {
    const handler = await loadHandler();
    const value = await handler(event, lambdaContext);
    send({ id, ok: true, value: value === undefined ? null : value });
  } catch (error) {
    const { name, message: text, stack } = error instanceof Error ? error : new Error(String(error));
    send({ id, ok: false, error: { errorType: name, errorMessage: text, stackTrace: stack?.split("\n") ?? [] } });
  }
});

// The init phase: import the module once, as Lambda does before the first invocation.
loadHandler().then(
  () => send({ id: "init", ok: true, value: null }),
  (error: Error) =>
    send({ id: "init", ok: false, error: { errorType: error.name, errorMessage: error.message, stackTrace: [] } }),
);
