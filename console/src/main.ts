/** DataDistiller's web console: wires the panels to the page. It speaks only the public HTTP API. */
import { ApiError, ConsoleApi } from "./api.ts";
import { clearSettings, loadSettings, saveSettings, tokenInfo } from "./config.ts";
import { DeadLettersPanel } from "./dead-letters.ts";
import { byTestId, errorMessage } from "./dom.ts";
import { JobsPanel } from "./jobs.ts";
import { PipelinePanel } from "./pipeline.ts";
import { SearchPanel } from "./search.ts";

async function main(): Promise<void> {
  const settings = await loadSettings();
  const api = new ConsoleApi(settings.endpoint, settings.token);

  // Header: where we are and who we are.
  const { tenant, expiresAt } = tokenInfo(settings.token);
  byTestId("endpoint").textContent = settings.endpoint;
  byTestId("tenant").textContent = tenant
    ? `tenant ${tenant}${settings.tokenSource === "local stack" ? " (local token)" : ""}`
    : "no token: open Settings";
  if (expiresAt) byTestId("tenant").title = `token expires ${expiresAt.toLocaleString()}`;
  void api.health().then((up) => {
    const dot = byTestId("health");
    dot.dataset.up = String(up);
    dot.title = up ? "API reachable" : "API unreachable";
  });
  setUpSettings(settings.endpoint, settings.token);

  // Tabs.
  const tabs = ["search", "dead-letters", "pipeline"] as const;
  const show = (name: (typeof tabs)[number]) => {
    for (const tab of tabs) {
      byTestId(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
      byTestId(`panel-${tab}`).hidden = tab !== name;
    }
    if (name === "dead-letters") void deadLetters.load();
    // The Pipeline view polls GET /metrics only while it is open.
    if (name === "pipeline") {
      pipeline.start();
      void deadLetters.load();
    } else pipeline.stop();
  };
  for (const tab of tabs) byTestId(`tab-${tab}`).addEventListener("click", () => show(tab));

  const deadLetters = new DeadLettersPanel(api, byTestId("panel-dead-letters"), (count) => {
    byTestId("dead-letters-count").textContent = count > 0 ? String(count) : "";
  });
  const pipeline = new PipelinePanel(settings.endpoint, byTestId("panel-pipeline"), () => deadLetters.count);
  new SearchPanel(api, byTestId("panel-search"));
  const jobs = new JobsPanel(api, byTestId("jobs"), byTestId("jobs-empty"), (job) => {
    // A failed job may have left a dead letter behind.
    if (job.state === "FAILED") void deadLetters.load();
  });

  // Uploads: drop zone and file picker.
  const zone = byTestId("dropzone");
  const input = byTestId<HTMLInputElement>("upload-input");
  const collection = () => byTestId<HTMLInputElement>("upload-collection").value.trim() || undefined;
  const send = (files: FileList | null) => {
    if (files?.length) void jobs.upload([...files], collection());
  };
  input.addEventListener("change", () => {
    send(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send(event.dataTransfer?.files ?? null);
  });

  const notice = byTestId("notice");
  const explain = (error: unknown) => {
    notice.hidden = false;
    notice.textContent =
      error instanceof ApiError && error.status === 401
        ? "The API refused the token (401). Paste a valid token in Settings."
        : errorMessage(error);
  };
  if (!settings.token) {
    notice.hidden = false;
    notice.textContent = "No token yet: open Settings and paste a bearer token for this API.";
    return;
  }
  try {
    await jobs.loadRecent();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return; // an API without GET /jobs
    explain(error);
  }
  deadLetters.load().catch(() => {});
}

function setUpSettings(endpoint: string, token: string | undefined): void {
  const dialog = byTestId<HTMLDialogElement>("settings");
  const endpointInput = byTestId<HTMLInputElement>("settings-endpoint");
  const tokenInput = byTestId<HTMLTextAreaElement>("settings-token");
  byTestId("open-settings").addEventListener("click", () => {
    endpointInput.value = endpoint;
    tokenInput.value = token ?? "";
    dialog.showModal();
  });
  byTestId("settings-cancel").addEventListener("click", () => dialog.close());
  byTestId("settings-reset").addEventListener("click", () => {
    clearSettings();
    location.reload();
  });
  byTestId<HTMLFormElement>("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveSettings({ endpoint: endpointInput.value, token: tokenInput.value });
    location.reload();
  });
}

main().catch((error: unknown) => {
  const notice = document.querySelector<HTMLElement>('[data-testid="notice"]');
  if (notice) {
    notice.hidden = false;
    notice.textContent = `The console failed to start: ${errorMessage(error)}`;
  }
});
