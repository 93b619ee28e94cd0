import type { WriteStream } from "node:tty";
import pc from "picocolors";
import type { Style } from "./format.ts";

/**
 * Colors only on a terminal (NO_COLOR / FORCE_COLOR respected). Decided here rather than by
 * picocolors, which also turns colors on whenever CI is set, even when output goes to a pipe.
 */
export function colorsFor(stream: NodeJS.WriteStream | WriteStream) {
  const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== "0";
  const enabled = forced || (stream.isTTY === true && !("NO_COLOR" in process.env) && process.env.TERM !== "dumb");
  return { ...pc.createColors(enabled), enabled };
}

export const out = colorsFor(process.stdout);
export const err = colorsFor(process.stderr);

/** How a highlighted word is shown: colored on a terminal, **word** otherwise. */
export const markStyle: Style = out.enabled ? (text) => out.bold(out.yellow(text)) : (text) => `**${text}**`;

export const print = (text: string) => process.stdout.write(`${text}\n`);
export const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
/** Progress and hints: stderr, so stdout carries only results. */
export const note = (text: string) => process.stderr.write(`${text}\n`);
