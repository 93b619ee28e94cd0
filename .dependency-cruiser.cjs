/**
 * The layout's dependency rules, checked by `npm run lint` (dependency-cruiser): no import cycle
 * between top-level folders, a pure domain, a generic emulator, a core (shared/) that imports
 * nothing around it. See the README's layout table for what each folder holds.
 */
const TOP_LEVEL = "^(infra|functions|layers|shared|localstack|cli|console|scripts|bin|test)/";

/**
 * The top-level folders from the bottom up, each with the folders it may import. Every folder
 * imports only folders listed before it, so no import cycle between top-level folders can exist;
 * a rule per folder below enforces its list.
 */
const LAYERS = [
  ["shared", []],
  ["layers", ["shared"]],
  ["functions", ["shared"]],
  ["infra", ["shared", "layers"]],
  ["cli", ["shared"]],
  ["console", ["shared", "cli"]],
  ["localstack", ["shared", "layers", "infra", "cli", "console"]],
  ["scripts", ["shared", "layers", "functions", "infra", "cli", "console", "localstack"]],
  ["bin", ["cli"]],
  ["test", ["shared", "layers", "functions", "infra", "cli", "console", "localstack", "scripts"]],
];
const below = new Set();
for (const [folder, allowed] of LAYERS) {
  const above = allowed.filter((name) => !below.has(name));
  if (above.length > 0) throw new Error(`${folder} may only import folders listed before it, not ${above.join(", ")}`);
  below.add(folder);
}
const layerRules = LAYERS.map(([folder, allowed]) => ({
  name: `${folder}-imports-only-${allowed.length > 0 ? allowed.join("-") : "itself"}`,
  comment:
    `${folder}/ may import ${allowed.length > 0 ? allowed.map((name) => `${name}/`).join(", ") : "no other top-level folder"}: ` +
    "top-level folders depend on each other one way only, so no cycle can form between them.",
  severity: "error",
  from: { path: `^${folder}/` },
  to: {
    path: `^(${LAYERS.map(([name]) => name)
      .filter((name) => name !== folder && !allowed.includes(name))
      .join("|")})/`,
  },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "no-cycle-between-folders",
      comment: "No two folders (e.g. shared/stages and shared/adapters) import each other, even through others.",
      severity: "error",
      scope: "folder",
      from: { path: TOP_LEVEL },
      to: { circular: true },
    },
    {
      name: "no-circular",
      comment: "Modules do not import each other in a circle.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "domain-is-pure",
      comment: "shared/domain reaches no AWS SDK, Kafka client or ONNX runtime, not even through another module.",
      severity: "error",
      from: { path: "^shared/domain/" },
      to: { reachable: true, path: "^node_modules/(@aws-sdk|@smithy|kafkajs|onnxruntime-node|onnxruntime-common)/" },
    },
    {
      name: "domain-is-the-bottom-layer",
      comment: "shared/domain imports nothing from stages, adapters or ml.",
      severity: "error",
      from: { path: "^shared/domain/" },
      to: { path: "^shared/(stages|adapters|ml)/" },
    },
    {
      name: "shared-is-the-core",
      comment: "shared/ is used by the functions, the infrastructure and the tools, and imports none of them.",
      severity: "error",
      from: { path: "^shared/" },
      to: { path: "^(infra|functions|layers|localstack|cli|console|scripts|test)/" },
    },
    {
      name: "emulator-is-generic",
      comment:
        "localstack/emulator runs any synthesized template: it knows nothing of DataDistiller. " +
        "What wires DataDistiller belongs in localstack/platform, the servers in localstack/servers.",
      severity: "error",
      from: { path: "^localstack/emulator/" },
      to: { path: "^(localstack/(platform|servers)|infra|functions|layers|shared|cli|console|scripts)/" },
    },
    {
      name: "functions-are-thin",
      comment:
        "A handler wires shared/ code to its event through the one middy stack (functions/middleware.ts); " +
        "it imports no other handler, nor infra or tools.",
      severity: "error",
      from: { path: "^functions/([^/]+)/" },
      to: { path: "^(functions/(?!$1/|middleware\\.ts$)|infra|layers|localstack|cli|console|scripts)" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(cdk\\.out|\\.local|coverage|console/dist)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
