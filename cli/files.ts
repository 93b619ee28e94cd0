import { stat } from "node:fs/promises";
import { basename, extname, isAbsolute, resolve } from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { CliError } from "./errors.ts";

/** The content types the API accepts by default, by file extension. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".pdf": "application/pdf",
  ".txt": "text/plain",
  ".text": "text/plain",
  ".md": "text/markdown",
  ".markdown": "text/markdown",
  ".html": "text/html",
  ".htm": "text/html",
};

export function contentTypeOf(path: string): string | undefined {
  return CONTENT_TYPES[extname(path).toLowerCase()];
}

export interface LocalFile {
  /** The path as the user wrote it (or as the glob matched it). */
  path: string;
  filename: string;
  contentType: string;
  size: number;
}

/**
 * The files named by paths and globs, each checked before anything is uploaded: it exists, is a
 * file, is not empty and has a known extension. Every problem is reported, one line each.
 */
export async function expandFiles(patterns: string[], cwd = process.cwd()): Promise<LocalFile[]> {
  const problems: string[] = [];
  const files: LocalFile[] = [];
  const seen = new Set<string>();
  for (const pattern of patterns) {
    const exists = await stat(resolve(cwd, pattern)).catch(() => undefined);
    if (exists || !isDynamicPattern(pattern)) {
      await check(pattern);
      continue;
    }
    const matches = await glob(pattern, {
      cwd,
      absolute: isAbsolute(pattern),
      onlyFiles: true,
      dot: false,
      expandDirectories: false,
    });
    if (matches.length === 0) problems.push(`${pattern}: no file matches`);
    for (const match of matches.sort()) await check(match);
  }
  if (problems.length > 0) throw new CliError(problems.join("\n"));
  return files;

  async function check(path: string) {
    const absolute = resolve(cwd, path);
    if (seen.has(absolute)) return;
    seen.add(absolute);
    const info = await stat(absolute).catch(() => undefined);
    const contentType = contentTypeOf(path);
    if (!info) problems.push(`${path}: no such file`);
    else if (info.isDirectory()) problems.push(`${path}: is a directory (use a glob such as "${path}/**/*.pdf")`);
    else if (!contentType) {
      problems.push(
        `${path}: unsupported file type "${extname(path)}" (supported: ${Object.keys(CONTENT_TYPES).join(", ")})`,
      );
    } else if (info.size === 0) problems.push(`${path}: file is empty`);
    else files.push({ path, filename: basename(path), contentType, size: info.size });
  }
}
