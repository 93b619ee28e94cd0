/** Dead letters: batches the pipeline gave up on, with the jobs they carried; redrive replays them. */
import type { ConsoleApi, DeadLetter } from "./api.ts";
import { byTestId, errorMessage, h, replace } from "./dom.ts";

export class DeadLettersPanel {
  count = 0;

  constructor(
    private readonly api: ConsoleApi,
    private readonly root: HTMLElement,
    private readonly onCount: (count: number) => void,
  ) {
    byTestId("dead-letters-refresh", root).addEventListener("click", () => void this.load());
    byTestId("dead-letters-redrive", root).addEventListener("click", () => void this.redrive());
  }

  async load(): Promise<void> {
    const status = byTestId("dead-letters-status", this.root);
    status.textContent = "loading…";
    try {
      const { deadLetters } = await this.api.deadLetters();
      this.render(deadLetters);
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      this.showError(error);
      status.textContent = "";
    }
  }

  private async redrive(): Promise<void> {
    const button = byTestId<HTMLButtonElement>("dead-letters-redrive", this.root);
    const status = byTestId("dead-letters-status", this.root);
    button.disabled = true;
    status.textContent = "redriving…";
    try {
      const { redriven } = await this.api.redriveDeadLetters();
      status.textContent = `redrove ${redriven.length} batch${redriven.length === 1 ? "" : "es"}`;
      await this.load();
      status.textContent = `redrove ${redriven.length} batch${redriven.length === 1 ? "" : "es"}`;
    } catch (error) {
      this.showError(error);
      status.textContent = "";
    } finally {
      button.disabled = this.count === 0;
    }
  }

  private showError(error: unknown): void {
    const box = byTestId("dead-letters-error", this.root);
    box.textContent = errorMessage(error);
    box.hidden = false;
  }

  private render(letters: DeadLetter[]): void {
    byTestId("dead-letters-error", this.root).hidden = true;
    this.count = letters.length;
    this.onCount(letters.length);
    byTestId("dead-letters-empty", this.root).hidden = letters.length > 0;
    byTestId("dead-letters-table", this.root).hidden = letters.length === 0;
    byTestId<HTMLButtonElement>("dead-letters-redrive", this.root).disabled = letters.length === 0;
    replace(
      byTestId("dead-letters-rows", this.root),
      ...letters.map((letter) =>
        h(
          "tr",
          { testid: "dead-letter" },
          h("td", {}, new Date(letter.failedAt).toLocaleString()),
          h("td", {}, letter.functionName),
          h("td", {}, letter.topic),
          h("td", { class: "num" }, String(letter.records)),
          h("td", { class: "num" }, letter.attempts === undefined ? "—" : String(letter.attempts)),
          h("td", { class: "ids" }, letter.jobIds.join(", ") || "—"),
          h("td", { class: "ids muted" }, letter.key),
        ),
      ),
    );
  }
}
