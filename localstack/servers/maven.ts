import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir } from "./paths.ts";
import { requireCommand, run } from "./process.ts";

/**
 * Resolves Maven artifacts and their runtime dependencies from Maven Central into
 * <cache>/maven/<name>/lib (the local ~/.m2 repository is Maven's own cache), so a server can run
 * with `java -cp "<lib>/*"`. Does nothing when the same coordinates were resolved before.
 */
export function resolveMavenClasspath(name: string, coordinates: string[]): string {
  const home = join(cacheDir, "maven", name);
  const lib = join(home, "lib");
  const marker = join(home, "resolved.txt");
  const wanted = coordinates.join("\n");
  if (existsSync(marker) && readFileSync(marker, "utf8") === wanted) return lib;

  requireCommand("java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless).");
  requireCommand("mvn", "Install Apache Maven (Debian: apt-get install maven).");
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, "pom.xml"), pomFor(name, coordinates));
  run("mvn", ["-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime", `-DoutputDirectory=${lib}`], {
    cwd: home,
  });
  writeFileSync(marker, wanted);
  return lib;
}

function pomFor(name: string, coordinates: string[]): string {
  const dependencies = coordinates.map((coordinate) => {
    const [groupId, artifactId, version] = coordinate.split(":");
    return `    <dependency><groupId>${groupId}</groupId><artifactId>${artifactId}</artifactId><version>${version}</version></dependency>`;
  });
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>datadistiller.local</groupId>
  <artifactId>${name}</artifactId>
  <version>1</version>
  <dependencies>
${dependencies.join("\n")}
  </dependencies>
</project>
`;
}
