/**
 * Serves the web console from the local stack's API server, under /console/ (same origin as the
 * API, so the page's API calls need no CORS). Only here, as the local stand-in for an identity
 * provider, does `GET /console/config.json` hand the page a token: one minted by the local issuer
 * for the tenant "local".
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, resolve, sep } from "node:path";
import { ensureConsoleBuilt } from "../../console/build.ts";
import type { LocalHandler } from "../emulator/http-api.ts";
import { mintToken } from "./tokens.ts";

export const CONSOLE_PATH = "/console/";
export const LOCAL_CONSOLE_TENANT = "local";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

export interface ConsoleOptions {
  log?: (line: string) => void;
  /** The built console (default: built now from console/ when its sources changed). */
  distDir?: string;
  tenant?: string;
  /** The API's JWT audience and tenant claim (the template's defaults). */
  audience?: string;
  tenantClaim?: string;
}

/** Builds the console if its sources changed and returns the handler that serves it. */
export async function consoleHandler(options: ConsoleOptions = {}): Promise<LocalHandler> {
  const root = resolve(options.distDir ?? (await ensureConsoleBuilt(options.log)));
  const tenant = options.tenant ?? LOCAL_CONSOLE_TENANT;
  return async (request, response) => {
    const rawPath = (request.url ?? "/").split("?")[0] ?? "/";
    if (rawPath !== "/console" && !rawPath.startsWith(CONSOLE_PATH)) return false;
    const method = request.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") {
      send(response, 405, "text/plain; charset=utf-8", "Method Not Allowed", { allow: "GET, HEAD" });
      return true;
    }
    if (rawPath === "/console") {
      const query = request.url?.slice(rawPath.length) ?? "";
      response.writeHead(301, { location: `${CONSOLE_PATH}${query}` }).end();
      return true;
    }
    let relative: string;
    try {
      relative = decodeURIComponent(rawPath.slice(CONSOLE_PATH.length));
    } catch {
      notFound(response);
      return true;
    }
    if (relative === "config.json") {
      const token = await mintToken({
        tenant,
        audience: options.audience ?? "datadistiller",
        tenantClaim: options.tenantClaim ?? "tenant",
        expiresIn: "12h",
      });
      const body = JSON.stringify({ endpoint: `http://${request.headers.host ?? "127.0.0.1"}`, token, tenant });
      send(response, 200, CONTENT_TYPES[".json"] as string, method === "HEAD" ? "" : body, {
        "cache-control": "no-store",
      });
      return true;
    }
    await serveFile(root, relative || "index.html", request, response);
    return true;
  };
}

async function serveFile(root: string, relative: string, request: IncomingMessage, response: ServerResponse) {
  const file = resolve(root, relative);
  // No way out of the build folder: "..", encoded slashes, absolute paths and NUL all end here.
  if (relative.includes("\0") || !file.startsWith(root + sep)) return notFound(response);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return notFound(response);
  response.writeHead(200, {
    "content-type": CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
    "content-length": String(info.size),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  if (request.method === "HEAD") {
    response.end();
    return;
  }
  createReadStream(file).pipe(response);
}

function notFound(response: ServerResponse): void {
  send(response, 404, "application/json", JSON.stringify({ message: "Not Found" }));
}

function send(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { "content-type": contentType, ...headers });
  response.end(body);
}
