import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildDashboard, DASHBOARD_PATH, renderDashboard } from "../../scripts/grafana-dashboard.ts";
import { METRIC_CATALOG, prometheusName } from "../../shared/domain/metric-catalog.ts";

/**
 * The docker-compose `observability` profile cannot run here (no Docker): its files are checked
 * for what would break it (mounts of files that do not exist, a scrape target that is not the
 * runtime's /metrics, dashboards querying names GET /metrics does not expose).
 */
const root = resolve(import.meta.dirname, "..", "..");
const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"));
const exposed = new Set(METRIC_CATALOG.map((metric) => prometheusName(metric)));

describe("docker-compose observability profile", () => {
  it("keeps the three servers out of the profile and puts Prometheus, Grafana and a Kafka UI in it", () => {
    for (const name of ["kafka", "s3", "dynamodb"]) expect(compose.services[name].profiles, name).toBeUndefined();
    for (const name of ["prometheus", "grafana", "kafka-ui"]) {
      expect(compose.services[name].profiles, name).toEqual(["observability"]);
      expect(compose.services[name].image, name).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+$/);
    }
  });

  it("mounts only files and folders that are in the repository", () => {
    for (const [name, service] of Object.entries<{ volumes?: string[] }>(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0] as string;
        if (source.startsWith(".")) expect(existsSync(join(root, source)), `${name}: ${source}`).toBe(true);
      }
    }
  });

  it("scrapes the local runtime's /metrics and provisions the dashboard Grafana mounts", () => {
    const prometheus = parse(readFileSync(join(root, "observability", "prometheus.yml"), "utf8"));
    const [job] = prometheus.scrape_configs;
    expect(job.metrics_path).toBe("/metrics");
    expect(job.static_configs[0].targets).toEqual(["host.docker.internal:3000"]);
    const datasource = parse(
      readFileSync(join(root, "observability/grafana/provisioning/datasources/prometheus.yml"), "utf8"),
    );
    expect(datasource.datasources[0]).toMatchObject({ uid: "prometheus", url: "http://prometheus:9090" });
    const provider = parse(
      readFileSync(join(root, "observability/grafana/provisioning/dashboards/datadistiller.yml"), "utf8"),
    );
    const mount = compose.services.grafana.volumes.find((volume: string) => volume.includes("dashboards:"));
    expect(mount.split(":")[1]).toBe(provider.providers[0].options.path);
  });
});

describe("Grafana dashboard", () => {
  it("is committed as the catalog generates it (npm run grafana)", () => {
    expect(readFileSync(DASHBOARD_PATH, "utf8")).toBe(renderDashboard());
  });

  it("queries only names GET /metrics exposes, and shows every one of them", () => {
    const queried = new Set<string>();
    for (const panel of buildDashboard().panels) {
      expect(panel.datasource.uid).toBe("prometheus");
      for (const target of panel.targets) {
        for (const [name] of target.expr.matchAll(/datadistiller_[a-z_]+/g)) {
          const family = name.replace(/_(bucket|sum|count)$/, "");
          expect(exposed, `${panel.title}: ${name}`).toContain(family);
          queried.add(family);
        }
      }
    }
    expect([...queried].sort()).toEqual([...exposed].sort());
  });
});
