import { describe, expect, it } from "vitest";
import { CONFIG_KEYS, InvalidConfigError, parseConfig } from "../../infra/config.ts";

const parse = (values: Record<string, unknown>) => parseConfig((key) => values[key]);

describe("infra config", () => {
  it("has documented defaults", () => {
    const config = parse({});
    expect(config).toMatchObject({
      stage: "dev",
      mskMode: "serverless",
      partitionsDocumentsUploaded: 6,
      partitionsChunksToEmbed: 12,
      partitionsChunksEmbedded: 6,
      natGateways: 0,
      vpcInterfaceEndpoints: true,
      modelLocation: "layer",
      rerankerLocation: "models",
      allowedContentTypes: ["application/pdf", "text/plain", "text/markdown", "text/html"],
      maxUploadBytes: 50 * 1024 * 1024,
      tenantClaim: "tenant",
      jwtAudience: ["datadistiller"],
      removalPolicy: "retain",
      reserveConcurrency: true,
    });
    expect(config.alarmEmail).toBeUndefined();
  });

  it("accepts -c strings: numbers, booleans, comma-separated lists", () => {
    const config = parse({
      natGateways: "1",
      reserveConcurrency: "false",
      allowedContentTypes: "application/pdf, text/plain",
      jwtAudience: "web,cli",
      maxUploadBytes: "1048576",
    });
    expect(config.natGateways).toBe(1);
    expect(config.reserveConcurrency).toBe(false);
    expect(config.allowedContentTypes).toEqual(["application/pdf", "text/plain"]);
    expect(config.jwtAudience).toEqual(["web", "cli"]);
    expect(config.maxUploadBytes).toBe(1048576);
  });

  it("accepts cdk.json JSON values", () => {
    expect(parse({ reserveConcurrency: false, jwtAudience: ["a", "b"], embedMemoryMb: 6144 })).toMatchObject({
      reserveConcurrency: false,
      jwtAudience: ["a", "b"],
      embedMemoryMb: 6144,
    });
  });

  it("reports every problem at once", () => {
    const attempt = () =>
      parse({
        stage: "Prod!",
        embedMemoryMb: "64",
        modelLocation: "ftp://x",
        rerankerLocation: "/opt/rerankers",
        natGateways: "0",
        vpcInterfaceEndpoints: "false",
      });
    expect(attempt).toThrow(InvalidConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      for (const key of ["stage", "embedMemoryMb", "modelLocation", "rerankerLocation", "vpcInterfaceEndpoints"])
        expect(message).toContain(key);
    }
  });

  it("rejects a burst limit below the rate limit and an invalid e-mail", () => {
    expect(() => parse({ apiThrottleRateLimit: "100", apiThrottleBurstLimit: "10" })).toThrow(/apiThrottleBurstLimit/);
    expect(() => parse({ alarmEmail: "nobody" })).toThrow(/alarmEmail/);
  });

  it("lists its keys (the README table documents each)", () => {
    expect(CONFIG_KEYS).toContain("jwtIssuer");
    expect(CONFIG_KEYS).toContain("mskMode");
    expect(new Set(CONFIG_KEYS).size).toBe(CONFIG_KEYS.length);
  });
});
