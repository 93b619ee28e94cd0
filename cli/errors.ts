import { ApiError } from "./api-client.ts";

/** An error the user can act on: printed as `error: <message>` without a stack trace. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** fetch's "fetch failed" (the reason is in its cause) as one line that names the target. */
function networkMessage(error: Error, endpoint: string | undefined): string | undefined {
  if (!(error instanceof TypeError) || error.message !== "fetch failed") return undefined;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? "network error";
  const hint = reason === "ECONNREFUSED" ? " (is the platform running? `npm start`, or pass --endpoint)" : "";
  return `cannot reach ${endpoint ?? "the API"}: ${reason}${hint}`;
}

/** One line for any error; the API's message when it gave one. */
export function describeError(error: unknown, endpoint?: string): string {
  if (error instanceof CliError || error instanceof ApiError) return error.message;
  if (error instanceof Error) return networkMessage(error, endpoint) ?? error.message;
  return String(error);
}
