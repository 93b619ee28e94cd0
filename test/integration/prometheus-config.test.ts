import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { promtool } from "../support/prometheus-tools.ts";

/** The observability profile's Prometheus configuration, checked by Prometheus's own tool. */
describe("observability/prometheus.yml", () => {
  it("passes promtool check config", () => {
    const config = join(resolve(import.meta.dirname, "..", ".."), "observability", "prometheus.yml");
    const result = promtool(["check", "config", config]);
    expect(result.output).toContain("SUCCESS");
    expect(result.status, result.output).toBe(0);
  }, 900_000);
});
