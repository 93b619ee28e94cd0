import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type FunctionDefinition, FunctionHost } from "../../localstack/emulator/function-host.ts";

const fixture = fileURLToPath(new URL("./fixtures/handlers.ts", import.meta.url));
const hosts: FunctionHost[] = [];

function host(exportName: string, overrides: Partial<FunctionDefinition> = {}): FunctionHost {
  const created = new FunctionHost(
    {
      name: `test-${exportName}`,
      modulePath: fixture,
      exportName,
      environment: { GREETING: "hello" },
      timeoutSeconds: 5,
      memoryMb: 128,
      concurrency: 1,
      ...overrides,
    },
    () => {},
  );
  hosts.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((created) => created.close()));
});

describe("FunctionHost", () => {
  it("passes the event, a Lambda context and the function's environment, and reuses the warm environment", async () => {
    const echo = host("echo");
    const first = await echo.invoke({ hello: "world" });
    const second = await echo.invoke({ n: 2 });
    expect(first.ok && first.value).toMatchObject({ event: { hello: "world" }, env: "hello", invocations: 1 });
    if (!first.ok || !second.ok) throw new Error("invocations failed");
    const [a, b] = [first.value as Record<string, unknown>, second.value as Record<string, unknown>];
    expect(a.requestId).toBe(first.requestId);
    expect(a.remainingMs).toBeGreaterThan(4000);
    expect(a.remainingMs).toBeLessThanOrEqual(5000);
    expect(b.pid).toBe(a.pid);
    expect(b.invocations).toBe(2);
  });

  it("reports a handler's error in Lambda's shape", async () => {
    const result = await host("fail").invoke({});
    expect(result).toMatchObject({ ok: false, error: { errorType: "TypeError", errorMessage: "bad input" } });
  });

  it("times an invocation out, discards that environment and serves the next one in a fresh one", async () => {
    const sleeper = host("sleep", { timeoutSeconds: 1 });
    const timedOut = await sleeper.invoke({ ms: 3000 });
    expect(timedOut).toMatchObject({ ok: false, error: { errorType: "Sandbox.Timedout" } });
    expect(timedOut.durationMs).toBeLessThan(2000);
    const next = await sleeper.invoke({ ms: 10 });
    expect(next).toMatchObject({ ok: true, value: { slept: 10 } });
  });

  it("survives a handler that kills its process", async () => {
    const crashing = host("crash");
    expect(await crashing.invoke({})).toMatchObject({ ok: false, error: { errorType: "Runtime.ExitError" } });
    expect(await crashing.invoke({})).toMatchObject({ ok: false, error: { errorType: "Runtime.ExitError" } });
  });

  it("never runs more environments at once than its concurrency", async () => {
    const sleeper = host("sleep", { concurrency: 2 });
    const results = await Promise.all(Array.from({ length: 5 }, () => sleeper.invoke({ ms: 300 })));
    const pids = new Set(results.map((result) => (result.ok ? (result.value as { pid: number }).pid : 0)));
    expect(results.every((result) => result.ok)).toBe(true);
    expect(pids.size).toBe(2);
  });

  it("reports a module that fails to load as an init error", async () => {
    const missing = host("nope");
    expect(await missing.invoke({})).toMatchObject({ ok: false, error: { errorType: "Runtime.InitError" } });
  });
});
