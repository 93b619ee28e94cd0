/**
 * The console's side of the public HTTP API: the client the CLI uses (nothing but fetch at run
 * time), plus what only a browser needs: content types of dropped files and uploads with
 * progress.
 */

import { ApiError, DataDistillerClient } from "../../cli/api-client.ts";
import type { PresignedUpload } from "../../shared/adapters/object-store.ts";

export type { DeadLetter, JobStatus, SearchRequest, SearchResponse, UploadTicket } from "../../cli/api-client.ts";
export { ApiError, DataDistillerClient as ConsoleApi };

export const ALLOWED_TYPES = ["application/pdf", "text/plain", "text/markdown", "text/html"] as const;
const BY_EXTENSION: Readonly<Record<string, string>> = {
  pdf: "application/pdf",
  txt: "text/plain",
  text: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
};

/** The content type to declare for a file: by extension (browsers often leave .md untyped), else the browser's. */
export function contentTypeOf(file: File): string | undefined {
  const extension = /\.([^.]+)$/.exec(file.name)?.[1]?.toLowerCase() ?? "";
  const type = BY_EXTENSION[extension] ?? file.type.split(";")[0]?.trim() ?? "";
  return (ALLOWED_TYPES as readonly string[]).includes(type) ? type : undefined;
}

/**
 * Sends the file where the API said (presigned PUT, or POST form), straight to S3 from the
 * browser, reporting progress. XMLHttpRequest because fetch reports no upload progress.
 */
export function uploadWithProgress(
  upload: PresignedUpload,
  file: File,
  onProgress: (fraction: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new ApiError(request.status, s3Message(request.responseText)));
    });
    request.addEventListener("error", () =>
      reject(new Error("the upload to S3 failed (network error or CORS: is this origin in corsAllowedOrigins?)")),
    );
    if (upload.method === "POST") {
      const form = new FormData();
      for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
      form.append("file", file);
      request.send(form);
    } else {
      for (const [name, value] of Object.entries(upload.headers)) {
        request.setRequestHeader(name, value);
      }
      request.send(file);
    }
  });
}

/** S3 answers errors as XML: keep the message. */
function s3Message(xml: string): { message: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1];
  return { message: [code, message].filter(Boolean).join(": ") || xml.slice(0, 200) || "upload refused" };
}
