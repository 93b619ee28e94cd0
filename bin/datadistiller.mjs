#!/usr/bin/env node
// The `datadistiller` command: the CLI is TypeScript, run through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
