/**
 * The embedder alone, for comparison with the pipeline: chunks per second through onnxruntime
 * with the embed function's batch size, in `sessions` processes of `threads` intra-op threads
 * each, all running at once (as the local embed environments do). Each process loads its
 * session, embeds a warm-up slice, waits for the others, then embeds every text once.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Embedder } from "../shared/ml/embedder.ts";
import { modelPaths } from "../shared/ml/model-files.ts";

interface Job {
  modelDir: string;
  texts: string[];
  threads?: number;
}

type Reply = { ready: true } | { seconds: number };

export async function embedderThroughput(
  modelDir: string,
  texts: string[],
  options: { sessions: number; threads?: number },
): Promise<number> {
  const children = Array.from({ length: options.sessions }, () =>
    fork(fileURLToPath(import.meta.url), ["embedder-throughput"], { execArgv: ["--import", "tsx"] }),
  );
  try {
    const next = (child: (typeof children)[number]) =>
      new Promise<Reply>((resolve, reject) => {
        child.once("message", (reply: Reply) => resolve(reply));
        child.once("exit", (code) => reject(new Error(`embedder process exited (code ${code})`)));
      });
    const ready = children.map(next);
    const job: Job = { modelDir, texts, ...(options.threads ? { threads: options.threads } : {}) };
    for (const child of children) child.send(job);
    await Promise.all(ready);
    const done = children.map(next);
    for (const child of children) child.send("go");
    const replies = await Promise.all(done);
    const slowest = Math.max(...replies.map((reply) => ("seconds" in reply ? reply.seconds : Number.NaN)));
    return (options.sessions * texts.length) / slowest;
  } finally {
    for (const child of children) child.kill();
  }
}

// The child side: one session, the texts it was sent, one timed pass.
if (process.argv[2] === "embedder-throughput" && process.send) {
  process.once("message", async (job: Job) => {
    const embedder = await Embedder.load(
      modelPaths(job.modelDir).embedder,
      job.threads ? { threads: job.threads } : {},
    );
    await embedder.embed(job.texts.slice(0, 32));
    process.send?.({ ready: true } satisfies Reply);
    process.once("message", async () => {
      const began = performance.now();
      await embedder.embed(job.texts);
      process.send?.({ seconds: (performance.now() - began) / 1000 } satisfies Reply);
    });
  });
}
