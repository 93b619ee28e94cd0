/**
 * GET /health (no authorizer): answers 200 without touching any dependency, so it measures the
 * API and Lambda path only. API Gateway HTTP API payload format 2.0.
 */
export async function handler(): Promise<{ statusCode: number; headers: Record<string, string>; body: string }> {
  return {
    statusCode: 200,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: JSON.stringify({ status: "ok", stage: process.env.STAGE ?? "unknown" }),
  };
}
