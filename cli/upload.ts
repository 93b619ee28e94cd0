import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { type PresignedUpload, uploadFile } from "./api-client.ts";
import { CliError } from "./errors.ts";

/** S3's XML error (`<Code>`, `<Message>`) as a short text. */
export function storageErrorMessage(status: number, body: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  const detail = [code, message].filter(Boolean).join(": ") || body.trim().slice(0, 200);
  return `upload refused by storage: HTTP ${status}${detail ? ` ${detail}` : ""}`;
}

/**
 * Sends a local file with its presigned upload. A PUT is streamed from disk with the exact length
 * the URL signed, reporting bytes as they are handed to the socket. A POST form is sent with the
 * client's `uploadFile` (the whole file at once, progress only at the end).
 */
export async function uploadLocalFile(
  upload: PresignedUpload,
  file: { path: string; size: number; contentType: string },
  onBytes: (sent: number) => void = () => {},
): Promise<void> {
  if (upload.method === "POST") {
    await uploadFile(upload, await readFile(file.path), file.contentType);
    onBytes(file.size);
    return;
  }
  const url = new URL(upload.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const headers = { ...upload.headers, "content-length": String(file.size) };
  await new Promise<void>((resolve, reject) => {
    const req = send(url, { method: "PUT", headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new CliError(storageErrorMessage(status, Buffer.concat(chunks).toString("utf8"))));
      });
    });
    req.on("error", (error: Error & { code?: string }) =>
      reject(new CliError(`upload to ${url.host} failed: ${error.code ?? error.message}`)),
    );
    let sent = 0;
    const source = createReadStream(file.path);
    source.on("data", (chunk) => {
      sent += chunk.length;
      onBytes(sent);
    });
    pipeline(source, req).catch(reject);
  });
}
