import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { setPriority } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { InvocationContext, LambdaError, WorkerReply } from "./worker-protocol.ts";

/** What the local runtime needs to run one function as Lambda would. */
export interface FunctionDefinition {
  /** The template's logical id (also the function name locally). */
  name: string;
  /** Absolute path of the module holding the handler (bundled asset or TypeScript source). */
  modulePath: string;
  exportName: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
  /** How many execution environments may run at once (reserved concurrency, or a local default). */
  concurrency: number;
  /** CPU niceness of its environments (0 or unset: the runtime's own priority). */
  niceness?: number;
}

export type InvokeResult =
  | { ok: true; value: unknown; requestId: string; durationMs: number }
  | { ok: false; error: LambdaError; requestId: string; durationMs: number };

interface Worker {
  process: ChildProcess;
  busy: boolean;
}

const workerScript = fileURLToPath(new URL("./lambda-worker.ts", import.meta.url));

/**
 * Runs one function's invocations in warm worker processes: each is an execution environment
 * (own memory limit, own module state), reused across invocations, discarded when it times out
 * or crashes. At most `concurrency` run at once; further invocations wait their turn.
 */
export class FunctionHost {
  private readonly workers = new Set<Worker>();
  private readonly waiting: (() => void)[] = [];
  private slotsInUse = 0;
  private closed = false;

  constructor(
    readonly definition: FunctionDefinition,
    private readonly log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    /** Every line the function prints, as printed (e.g. for its embedded-format metrics). */
    private readonly onOutput: (line: string) => void = () => {},
  ) {}

  async invoke(event: unknown): Promise<InvokeResult> {
    const { name, timeoutSeconds, memoryMb } = this.definition;
    const requestId = randomUUID();
    let worker: Worker;
    try {
      worker = await this.acquire();
    } catch (error) {
      return { ...failure("Runtime.InitError", (error as Error).message), requestId, durationMs: 0 };
    }
    const started = Date.now();
    const context: InvocationContext = {
      awsRequestId: requestId,
      functionName: name,
      functionVersion: "$LATEST",
      invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
      memoryLimitInMB: String(memoryMb),
      logGroupName: `/aws/lambda/${name}`,
      logStreamName: `local/${worker.process.pid}`,
      deadline: started + timeoutSeconds * 1000,
    };
    const outcome = await new Promise<{ ok: true; value: unknown } | { ok: false; error: LambdaError }>((resolve) => {
      const finish = (result: { ok: true; value: unknown } | { ok: false; error: LambdaError }) => {
        clearTimeout(timer);
        worker.process.off("message", onMessage);
        worker.process.off("exit", onExit);
        resolve(result);
      };
      const onMessage = (reply: WorkerReply) => {
        if (reply.id !== requestId) return;
        finish(reply.ok ? { ok: true, value: reply.value } : { ok: false, error: reply.error });
      };
      const onExit = (code: number | null, signal: string | null) =>
        finish(
          failure("Runtime.ExitError", `RequestId: ${requestId} Error: Runtime exited (${signal ?? `code ${code}`})`),
        );
      const timer = setTimeout(() => {
        this.discard(worker);
        finish(failure("Sandbox.Timedout", `Task timed out after ${timeoutSeconds.toFixed(2)} seconds`));
      }, timeoutSeconds * 1000);
      worker.process.on("message", onMessage);
      worker.process.once("exit", onExit);
      worker.process.send({ id: requestId, event, context });
    });
    const durationMs = Date.now() - started;
    this.release(worker);
    if (!outcome.ok) this.log(`[${name}] ${requestId} failed after ${durationMs} ms: ${outcome.error.errorMessage}`);
    return { ...outcome, requestId, durationMs };
  }

  /** Process ids of the live execution environments (for operators and fault-injection tests). */
  pids(): number[] {
    return [...this.workers].flatMap((worker) => (worker.process.pid === undefined ? [] : [worker.process.pid]));
  }

  /** Stops every execution environment. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.workers].map((worker) => this.discard(worker)));
  }

  /**
   * Takes a concurrency slot (waiting for one if all are taken), then an idle environment or a
   * fresh one. Environments are only created while holding a slot, so there are never more than
   * `concurrency` of them.
   */
  private async acquire(): Promise<Worker> {
    if (this.closed) throw new Error(`${this.definition.name} is shut down`);
    if (this.slotsInUse < this.definition.concurrency) this.slotsInUse++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    const idle = [...this.workers].find((worker) => !worker.busy && worker.process.connected);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    try {
      const worker: Worker = { process: await this.spawn(), busy: true };
      this.workers.add(worker);
      worker.process.once("exit", () => this.workers.delete(worker));
      return worker;
    } catch (error) {
      this.releaseSlot();
      throw error;
    }
  }

  private release(worker: Worker): void {
    worker.busy = false;
    this.releaseSlot();
  }

  /** Hands the slot straight to the next waiting invocation, or frees it. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.slotsInUse--;
  }

  private discard(worker: Worker): Promise<void> {
    this.workers.delete(worker);
    if (worker.process.exitCode !== null || worker.process.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      worker.process.once("exit", () => resolve());
      worker.process.kill("SIGKILL");
    });
  }

  /** Starts an execution environment and waits for its init phase (module import) to finish. */
  private spawn(): Promise<ChildProcess> {
    const { name, modulePath, exportName, environment, memoryMb } = this.definition;
    // The function's name as an argument only labels the process in ps/top.
    const child = fork(workerScript, [name], {
      execArgv: ["--import", "tsx", `--max-old-space-size=${memoryMb}`],
      env: {
        ...environment,
        PATH: process.env.PATH,
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
        LOCAL_LAMBDA_MODULE: modulePath,
        LOCAL_LAMBDA_EXPORT: exportName,
      },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const { niceness } = this.definition;
    if (niceness && child.pid !== undefined) {
      try {
        setPriority(child.pid, niceness);
      } catch {
        // Best effort: without it the function still runs, only at the usual priority.
      }
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) {
        createInterface({ input: stream }).on("line", (line) => {
          this.onOutput(line);
          this.log(`[${name}] ${line}`);
        });
      }
    }
    return new Promise((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        if (reply.id !== "init") return;
        child.off("exit", onExit);
        child.off("message", onMessage);
        if (reply.ok) resolve(child);
        else {
          child.kill("SIGKILL");
          reject(new Error(`${name} failed to initialise: ${reply.error.errorMessage}`));
        }
      };
      const onExit = (code: number | null) => reject(new Error(`${name} exited during init (code ${code})`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  }
}

const failure = (errorType: string, errorMessage: string) => ({
  ok: false as const,
  error: { errorType, errorMessage, stackTrace: [] },
});
