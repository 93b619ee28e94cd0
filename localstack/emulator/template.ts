import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** A CloudFormation resource as `cdk synth` writes it. */
export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
  Condition?: string;
}

export interface StackTemplate {
  stackName: string;
  Resources: Record<string, Resource>;
  Parameters?: Record<string, { Default?: unknown; Type?: string }>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
}

/** Reads every stack template of a cloud assembly (cdk.out), in the order the manifest deploys them. */
export function loadCloudAssembly(cdkOut: string): StackTemplate[] {
  const manifestFile = join(cdkOut, "manifest.json");
  if (!existsSync(manifestFile)) throw new Error(`${manifestFile} not found: run \`npm run synth\` first`);
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string }; dependencies?: string[] }>;
  };
  const stacks = Object.entries(manifest.artifacts).filter(
    ([, artifact]) => artifact.type === "aws:cloudformation:stack",
  );
  // Deploy order: a stack after the stacks it depends on.
  const ordered: string[] = [];
  const visit = (id: string) => {
    if (ordered.includes(id)) return;
    for (const dependency of manifest.artifacts[id]?.dependencies ?? []) {
      if (manifest.artifacts[dependency]?.type === "aws:cloudformation:stack") visit(dependency);
    }
    ordered.push(id);
  };
  for (const [id] of stacks) visit(id);
  return ordered.map((id) => {
    const file = manifest.artifacts[id]?.properties?.templateFile ?? `${id}.template.json`;
    return {
      stackName: id,
      ...(JSON.parse(readFileSync(join(cdkOut, file), "utf8")) as Omit<StackTemplate, "stackName">),
    };
  });
}

/** Local stand-ins for what CloudFormation would return for a resource. */
export interface PhysicalResource {
  ref: string;
  attributes: Record<string, string>;
}

/**
 * Evaluates CloudFormation intrinsic functions against the local resources: Ref, Fn::GetAtt,
 * Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If, Fn::ImportValue and the pseudo parameters.
 */
export class Resolver {
  private readonly exports = new Map<string, string>();

  constructor(
    private readonly physical: Map<string, PhysicalResource>,
    private readonly context: { region: string; accountId: string },
  ) {}

  addExports(stack: StackTemplate): void {
    for (const output of Object.values(stack.Outputs ?? {})) {
      if (!output.Export) continue;
      this.exports.set(String(this.resolve(stack, output.Export.Name)), String(this.resolve(stack, output.Value)));
    }
  }

  resolve(stack: StackTemplate, value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(stack, item));
    if (value === null || typeof value !== "object") return value;
    const entries = Object.entries(value);
    const [fn, arg] = entries[0] ?? [];
    if (entries.length === 1 && fn && (fn === "Ref" || fn.startsWith("Fn::"))) return this.intrinsic(stack, fn, arg);
    return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(stack, item)]));
  }

  resolveString(stack: StackTemplate, value: unknown): string {
    const resolved = this.resolve(stack, value);
    return typeof resolved === "string" ? resolved : JSON.stringify(resolved);
  }

  isConditionTrue(stack: StackTemplate, name: string): boolean {
    return Boolean(this.evaluateCondition(stack, stack.Conditions?.[name]));
  }

  private intrinsic(stack: StackTemplate, fn: string, arg: unknown): unknown {
    switch (fn) {
      case "Ref":
        return this.ref(stack, String(arg));
      case "Fn::GetAtt": {
        const [logicalId, attribute] = Array.isArray(arg) ? arg.map(String) : String(arg).split(/\.(.*)/);
        return this.getAtt(logicalId ?? "", attribute ?? "");
      }
      case "Fn::Join": {
        const [separator, items] = arg as [string, unknown[]];
        return (this.resolve(stack, items) as unknown[]).map(String).join(separator);
      }
      case "Fn::Select": {
        const [index, items] = arg as [unknown, unknown];
        return (this.resolve(stack, items) as unknown[])[Number(this.resolve(stack, index))];
      }
      case "Fn::Split": {
        const [separator, source] = arg as [string, unknown];
        return String(this.resolve(stack, source)).split(separator);
      }
      case "Fn::Sub": {
        const [template, variables] = Array.isArray(arg)
          ? (arg as [string, Record<string, unknown>])
          : [String(arg), {}];
        return template.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (name in variables) return String(this.resolve(stack, variables[name]));
          if (name.includes(".") && !name.startsWith("AWS::")) {
            const [logicalId, attribute] = name.split(/\.(.*)/);
            return this.getAtt(logicalId ?? "", attribute ?? "");
          }
          return String(this.ref(stack, name));
        });
      }
      case "Fn::If": {
        const [condition, whenTrue, whenFalse] = arg as [string, unknown, unknown];
        return this.resolve(stack, this.isConditionTrue(stack, condition) ? whenTrue : whenFalse);
      }
      case "Fn::ImportValue": {
        const name = String(this.resolve(stack, arg));
        const exported = this.exports.get(name);
        if (exported === undefined) throw new Error(`Fn::ImportValue: no stack exports ${name}`);
        return exported;
      }
      case "Fn::Base64":
        return Buffer.from(String(this.resolve(stack, arg))).toString("base64");
      case "Fn::GetAZs":
        return [`${this.context.region}a`, `${this.context.region}b`];
      default:
        return this.evaluateCondition(stack, { [fn]: arg });
    }
  }

  private ref(stack: StackTemplate, name: string): unknown {
    switch (name) {
      case "AWS::Region":
        return this.context.region;
      case "AWS::AccountId":
        return this.context.accountId;
      case "AWS::Partition":
        return "aws";
      case "AWS::URLSuffix":
        return "amazonaws.com";
      case "AWS::StackName":
        return stack.stackName;
      case "AWS::StackId":
        return `arn:aws:cloudformation:${this.context.region}:${this.context.accountId}:stack/${stack.stackName}/local`;
      case "AWS::NoValue":
        return undefined;
    }
    const parameter = stack.Parameters?.[name];
    if (parameter) return parameter.Default;
    const resource = this.physical.get(name);
    if (!resource) throw new Error(`Ref: unknown resource or parameter ${name} in ${stack.stackName}`);
    return resource.ref;
  }

  private getAtt(logicalId: string, attribute: string): string {
    const resource = this.physical.get(logicalId);
    if (!resource) throw new Error(`Fn::GetAtt: unknown resource ${logicalId}`);
    return resource.attributes[attribute] ?? `local:${logicalId}.${attribute}`;
  }

  private evaluateCondition(stack: StackTemplate, condition: unknown): unknown {
    if (condition === null || typeof condition !== "object") return condition;
    const [fn, arg] = Object.entries(condition)[0] ?? [];
    const args = arg as unknown[];
    switch (fn) {
      case "Fn::Equals":
        return JSON.stringify(this.resolve(stack, args[0])) === JSON.stringify(this.resolve(stack, args[1]));
      case "Fn::Not":
        return !this.evaluateCondition(stack, args[0]);
      case "Fn::And":
        return args.every((item) => this.evaluateCondition(stack, item));
      case "Fn::Or":
        return args.some((item) => this.evaluateCondition(stack, item));
      case "Condition":
        return this.isConditionTrue(stack, String(arg));
      default:
        return this.resolve(stack, condition);
    }
  }
}
