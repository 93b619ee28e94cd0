/** The search panel: query, mode, k and rerank; ranked results with highlights, scores and timings. */
import type { ConsoleApi, SearchResponse } from "./api.ts";
import { append, byTestId, duration, errorMessage, h, replace } from "./dom.ts";
import { parseHighlights, renderParts, snippet } from "./highlight.ts";

type Hit = SearchResponse["results"][number];

const TIMING_ORDER = ["manifest", "load", "embed", "retrieve", "rerank", "highlight"];

export class SearchPanel {
  private nextCursor: string | undefined;
  private lastRequest: Parameters<ConsoleApi["search"]>[0] | undefined;
  private shown = 0;

  constructor(
    private readonly api: ConsoleApi,
    private readonly root: HTMLElement,
  ) {
    byTestId<HTMLFormElement>("search-form", root).addEventListener("submit", (event) => {
      event.preventDefault();
      void this.run();
    });
    byTestId("search-more", root).addEventListener("click", () => void this.more());
  }

  private field<T extends HTMLElement>(id: string): T {
    return byTestId<T>(id, this.root);
  }

  private async run(): Promise<void> {
    const query = this.field<HTMLInputElement>("search-input").value.trim();
    if (!query) return;
    const collection = this.field<HTMLInputElement>("search-collection").value.trim();
    this.lastRequest = {
      query,
      k: Number(this.field<HTMLInputElement>("search-k").value) || 10,
      mode: this.field<HTMLSelectElement>("search-mode").value as "hybrid" | "dense" | "bm25",
      rerank: this.field<HTMLInputElement>("search-rerank").checked,
      ...(collection ? { collection } : {}),
    };
    this.shown = 0;
    replace(this.field("search-results"));
    await this.fetch(this.lastRequest);
  }

  private async more(): Promise<void> {
    if (!this.lastRequest || !this.nextCursor) return;
    await this.fetch({ ...this.lastRequest, cursor: this.nextCursor });
  }

  private async fetch(request: Parameters<ConsoleApi["search"]>[0]): Promise<void> {
    const status = this.field("search-status");
    const error = this.field("search-error");
    const submit = this.field<HTMLButtonElement>("search-submit");
    error.hidden = true;
    submit.disabled = true;
    status.textContent = "searching…";
    const began = performance.now();
    try {
      const response = await this.api.search(request);
      const roundTrip = performance.now() - began;
      const list = this.field("search-results");
      response.results.forEach((hit, i) => {
        append(list, renderHit(hit, this.shown + i + 1));
      });
      this.shown += response.results.length;
      this.nextCursor = response.nextCursor;
      this.field("search-more").hidden = !response.nextCursor;
      replace(this.field("search-timings"), timingsLine(response.timings, roundTrip, this.shown));
      status.textContent = "";
      this.field("search-empty").hidden = this.shown > 0;
    } catch (caught) {
      status.textContent = "";
      error.textContent = errorMessage(caught);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  }
}

function renderHit(hit: Hit, rank: number): HTMLLIElement {
  const parts = parseHighlights(hit.highlights);
  const short = snippet(parts);
  const text = h("p", { class: "snippet", testid: "result-snippet" }, ...renderParts(short.parts));
  let expanded = false;
  const toggle = short.clipped
    ? h(
        "button",
        {
          class: "link",
          on: {
            click: (event) => {
              expanded = !expanded;
              replace(text, ...renderParts(expanded ? parts : short.parts));
              (event.currentTarget as HTMLButtonElement).textContent = expanded ? "less" : "whole chunk";
            },
          },
        },
        "whole chunk",
      )
    : null;
  return h(
    "li",
    { class: "result", testid: "result", attrs: { "data-document-id": hit.documentId } },
    h(
      "div",
      { class: "result-head" },
      h("span", { class: "rank" }, `${rank}`),
      h("span", { class: "result-title", testid: "result-title", title: hit.chunkId }, hit.filename ?? hit.documentId),
      h("span", { class: "page", testid: "result-page" }, `page ${hit.page}`),
      hit.collection && hit.collection !== "default" ? h("span", { class: "muted" }, hit.collection) : null,
      h("span", { class: "muted doc-id" }, hit.documentId),
    ),
    text,
    h("div", { class: "scores", testid: "result-scores" }, scoresLine(hit), toggle),
  );
}

const number = (value: number | undefined, digits = 4) =>
  value === undefined || value === null ? "—" : Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(digits);

function scoresLine(hit: Hit): string {
  return [
    `score ${number(hit.score)}`,
    `bm25 ${number(hit.scores.bm25)}`,
    `dense ${number(hit.scores.dense)}`,
    `fused ${number(hit.scores.fused)}`,
    `rerank ${number(hit.scores.rerank)}`,
  ].join(" · ");
}

function timingsLine(timings: Record<string, number>, roundTrip: number, shown: number): string {
  const stages = [
    ...TIMING_ORDER.filter((stage) => stage in timings),
    ...Object.keys(timings).filter((stage) => stage !== "total" && !TIMING_ORDER.includes(stage)),
  ];
  const parts = stages.map((stage) => `${stage} ${(timings[stage] ?? 0).toFixed(1)} ms`);
  if (timings.total !== undefined) parts.push(`server ${timings.total.toFixed(1)} ms`);
  parts.push(`round trip ${duration(roundTrip)}`);
  return `${shown} result${shown === 1 ? "" : "s"} · ${parts.join(" · ")}`;
}
