// SyncControls + SyncProgressModal: create a run, open the modal on "Preparando…", start it,
// and follow it. Status is polled every 2 s with its ETag; with the inline executor the page
// also drives the run, calling step about once a second (as the seed does), never two at once.
// A failed request is retried with a growing pause, and the modal says so. Reloading the
// page in the middle of a run reopens it: the server renders the company's active run id.
"use strict";
(() => {
  const POLL_MS = 2000;
  const STEP_PAUSE_MS = 1000;
  const MAX_RETRY_PAUSE_MS = 15000;
  const LOG_LINES = 8;
  const FINAL = new Set(["DONE", "FAILED", "CANCELED"]);
  const MODULE_STATES = {
    pending: "Aguardando",
    running: "Em execução",
    done: "Concluído",
    failed: "Falhou",
    canceled: "Cancelado",
  };

  const config = JSON.parse(document.getElementById("ui-config").textContent);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const $ = (id) => document.getElementById(id);
  const ui = {
    button: $("sync-button"),
    show: $("sync-show"),
    month: $("sync-month"),
    error: $("sync-error"),
    dialog: $("sync-modal"),
    title: $("sync-modal-title"),
    period: $("sync-modal-period"),
    status: $("sync-modal-status"),
    notice: $("sync-modal-notice"),
    wait: $("sync-modal-wait"),
    runError: $("sync-modal-error"),
    modules: $("sync-modules"),
    logs: $("sync-logs"),
    details: $("sync-details"),
    hide: $("sync-hide"),
    cancel: $("sync-cancel"),
    close: $("sync-close"),
  };
  const number = new Intl.NumberFormat("pt-BR");
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  class SessionExpired extends Error {}

  // -- HTTP ------------------------------------------------------------------------------
  async function call(method, path, body, etag) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (etag) headers["If-None-Match"] = etag;
    const response = await fetch(config.api + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", // our own If-None-Match, so a 304 reaches this code
      credentials: "same-origin",
    });
    if (response.status === 401) throw new SessionExpired();
    if (response.status === 304) return { status: 304, data: null, etag };
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null; // a proxy's HTML error page: treated as a failure below
    }
    return { status: response.status, data, etag: response.headers.get("ETag") };
  }

  const retryable = (r) =>
    r.status !== 304 && (r.status >= 500 || r.status === 429 || r.data === null);

  // Call `request` until it gets an answer worth acting on; say on screen while retrying.
  async function retrying(what, request, notice) {
    for (let attempt = 1; ; attempt++) {
      let result = null;
      let failure = "";
      try {
        result = await request();
        if (!retryable(result)) {
          if (notice.dataset.failing === what) hide(notice); // only the notice this call put up
          return result;
        }
        failure = result.data && result.data.error ? result.data.error : `HTTP ${result.status}`;
      } catch (error) {
        if (error instanceof SessionExpired) throw error;
        failure = "sem resposta do servidor";
      }
      if (run.stopped) return null;
      const pause = Math.min(1000 * 2 ** (attempt - 1), MAX_RETRY_PAUSE_MS);
      notice.dataset.failing = what;
      show(
        notice,
        `Falha ao ${what} (${failure}). Tentando novamente em ${Math.round(pause / 1000)} s` +
          ` — tentativa ${attempt + 1}.`,
      );
      await sleep(pause);
      if (run.stopped) return null;
    }
  }

  function show(el, text) {
    if (text !== undefined && el.textContent !== text) el.textContent = text;
    el.hidden = false;
  }
  function hide(el) {
    el.hidden = true;
  }
  function sessionExpired() {
    run.stopped = true;
    ui.notice.replaceChildren(
      "Sua sessão expirou. ",
      Object.assign(document.createElement("a"), {
        href: `${config.signInUrl}?next=${encodeURIComponent(location.pathname + location.search)}`,
        textContent: "Entre novamente",
      }),
      " para continuar acompanhando.",
    );
    ui.notice.hidden = false;
    ui.error.textContent = "Sua sessão expirou. Recarregue a página e entre novamente.";
    ui.error.hidden = false;
  }

  // -- the run being shown -----------------------------------------------------------------
  const run = {
    id: null,
    etag: null,
    finished: false,
    stopped: false,
    leaving: false,
    data: null,
  };

  // -- Tiny's pause (code 6): the run waits for the account's minute window ------------------
  const waiting = { until: 0, timer: null };

  function showWait(seconds) {
    if (!seconds || seconds <= 0) return;
    waiting.until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((waiting.until - Date.now()) / 1000);
      if (left <= 0 || run.finished) {
        clearInterval(waiting.timer);
        waiting.timer = null;
        hide(ui.wait);
        return;
      }
      show(ui.wait, `aguardando o limite do Tiny: ${left} s`);
    };
    tick();
    if (!waiting.timer) waiting.timer = setInterval(tick, 1000);
  }

  // Sleep out Tiny's pause instead of asking for steps that would only wait (a second at a
  // time, so a cancel or the run's end is noticed).
  async function sleepOutWait() {
    while (!run.finished && !run.stopped && Date.now() < waiting.until) {
      await sleep(Math.min(1000, waiting.until - Date.now()));
    }
  }

  function setStatusLine(text, status) {
    if (ui.status.textContent !== text) ui.status.textContent = text; // aria-live announces it
    ui.status.dataset.status = status || "";
  }

  function label(key) {
    return (config.moduleLabels && config.moduleLabels[key]) || key;
  }

  function formatDay(iso) {
    if (!iso) return "";
    const [y, m, d] = iso.slice(0, 10).split("-");
    return `${d}/${m}/${y}`;
  }

  function renderModules(modules) {
    for (const li of ui.modules.querySelectorAll(".module")) {
      const m = modules[li.dataset.module];
      if (!m) continue;
      const status = m.status || "pending";
      if (li.dataset.status !== status) {
        li.dataset.status = status;
        li.querySelector(".module-state").textContent = MODULE_STATES[status] || status;
      }
      li.querySelector(".processed").textContent = number.format(m.processed || 0);
      li.querySelector(".skipped").textContent = number.format(m.skipped || 0);
      const listing = m.listing || {};
      const pageText =
        status === "running" && listing.pages
          ? ` · página ${number.format(listing.page || 0)} de ${number.format(listing.pages)}`
          : "";
      li.querySelector(".pages").textContent = pageText;
      const errors = m.errors || [];
      const list = li.querySelector(".module-errors");
      if (list.childElementCount !== errors.length) {
        list.replaceChildren(
          ...errors.map((message) => Object.assign(document.createElement("li"), { textContent: message })),
        );
      }
      list.hidden = errors.length === 0;
    }
  }

  function renderLogs(logs) {
    if (!Array.isArray(logs)) return;
    if (logs.length === 0) return;
    const items = logs.slice(0, LOG_LINES).map((entry) => {
      const li = document.createElement("li");
      li.className = `log-${entry.level}`;
      const time = document.createElement("span");
      time.className = "log-time";
      time.textContent = new Date(entry.timestamp).toLocaleTimeString("pt-BR", {
        timeZone: "America/Sao_Paulo",
      });
      const where = entry.module ? `[${label(entry.module)}] ` : "";
      li.append(time, " ", where + entry.message);
      return li;
    });
    ui.logs.replaceChildren(...items);
  }

  function statusText(data) {
    const modules = (data.progress && data.progress.modules) || {};
    const keys = Object.keys(modules);
    switch (data.status) {
      case "QUEUED":
        return "Preparando… (na fila)";
      case "RUNNING": {
        const current = data.currentModule;
        const done = keys.filter((k) => ["done", "failed", "canceled"].includes(modules[k].status));
        if (keys.length === 0) return "Em andamento…";
        if (current) {
          return `Em andamento: ${label(current)} (${keys.indexOf(current) + 1} de ${keys.length})`;
        }
        return `Em andamento: ${done.length} de ${keys.length} módulos concluídos`;
      }
      case "DONE":
        return "Concluída com sucesso";
      case "FAILED": {
        const failed = keys.filter((k) => modules[k].status === "failed").map(label);
        return failed.length ? `Concluída com falhas em: ${failed.join(", ")}` : "A sincronização falhou";
      }
      case "CANCELED":
        return "Sincronização cancelada";
      default:
        return data.status || "Preparando…";
    }
  }

  function render(data, { fromStatus = false } = {}) {
    if (!data || (data.runId && data.runId !== run.id)) return;
    run.data = { ...(run.data || {}), ...data };
    const merged = run.data;
    if (merged.progress && merged.progress.modules) renderModules(merged.progress.modules);
    if (data.logs) renderLogs(data.logs);
    if (merged.startDate) {
      const mode = (config.modeLabels && config.modeLabels[merged.mode]) || merged.mode;
      ui.period.textContent = `${mode} · ${formatDay(merged.startDate)} a ${formatDay(merged.endDate)}`;
    }
    if (merged.status) setStatusLine(statusText(merged), merged.status);
    if (data.retryAfterSeconds) showWait(data.retryAfterSeconds);
    syncControls(merged);
    ui.modules.setAttribute("aria-busy", String(!FINAL.has(merged.status)));
    // The run's error message repeats the modules' errors; shown only when they say nothing.
    const moduleErrors = ui.modules.querySelectorAll(".module-errors li").length;
    if (merged.errorMessage && FINAL.has(merged.status) && !moduleErrors) {
      show(ui.runError, merged.errorMessage);
    }
    if (FINAL.has(merged.status)) finish(fromStatus);
  }

  function finish(fromStatus) {
    if (run.finished) return;
    run.finished = true;
    run.stopped = true;
    hide(ui.notice);
    ui.cancel.hidden = true;
    ui.hide.hidden = true;
    ui.close.hidden = false;
    ui.details.href = config.runUrl.replace("RUN_ID", run.id);
    ui.details.hidden = false;
    ui.show.hidden = true;
    ui.button.disabled = false;
    ui.button.textContent = "Sincronizar";
    if (!ui.dialog.open) ui.dialog.showModal();
    ui.close.focus();
    // A step's or a cancel's answer has no log lines: fetch the final status once for them.
    if (!fromStatus) refreshStatus().catch(() => {});
  }

  // -- the loops -------------------------------------------------------------------------
  async function refreshStatus() {
    const r = await retrying("consultar o status", () =>
      call("GET", `/status?runId=${encodeURIComponent(run.id)}`),
      ui.notice,
    );
    if (r && r.status === 200) {
      run.etag = r.etag;
      render(r.data, { fromStatus: true });
    }
    return r;
  }

  async function pollLoop() {
    while (!run.finished && !run.stopped) {
      const r = await retrying(
        "consultar o status",
        () => call("GET", `/status?runId=${encodeURIComponent(run.id)}`, undefined, run.etag),
        ui.notice,
      );
      if (!r) return;
      if (r.status === 200) {
        run.etag = r.etag;
        render(r.data, { fromStatus: true });
      } else if (r.status !== 304) {
        show(ui.runError, (r.data && r.data.error) || `Erro ao consultar o status (HTTP ${r.status}).`);
        if (r.status === 404) return;
      }
      await sleep(POLL_MS);
    }
  }

  async function stepLoop() {
    while (!run.finished && !run.stopped) {
      const began = Date.now();
      const r = await retrying(
        "executar o próximo passo",
        () => call("POST", "/step", { runId: run.id }),
        ui.notice,
      );
      if (!r) return;
      if (r.status === 200) {
        render(r.data);
        if (!r.data.hasMore) {
          await refreshStatus(); // the final status, its error message and last log lines
          return;
        }
      } else if (r.status === 409) {
        await refreshStatus(); // no longer active: canceled elsewhere, or already finished
        return;
      } else {
        show(ui.runError, (r.data && r.data.error) || `Erro ao executar o passo (HTTP ${r.status}).`);
        return;
      }
      if (r.data.retryAfterSeconds) {
        await sleepOutWait();
        continue;
      }
      // One step a second at most: right away after a long step, after a pause after a short one.
      await sleep(Math.max(0, STEP_PAUSE_MS - (Date.now() - began)));
    }
  }

  async function follow(runId, { resumed = false } = {}) {
    Object.assign(run, { id: runId, etag: null, finished: false, stopped: false, data: null });
    ui.dialog.dataset.runId = runId;
    ui.button.disabled = true;
    ui.button.textContent = "Sincronização em andamento";
    setStatusLine(resumed ? "Retomando a sincronização em andamento…" : "Preparando…", "");
    openDialog();
    try {
      // Starting an already running run is harmless; a QUEUED one left by a reload needs it.
      const r = await retrying("iniciar a sincronização", () =>
        call("POST", "/start", { runId }),
        ui.notice,
      );
      if (r && r.status === 200) render(r.data);
      else if (r && r.status !== 409) {
        show(ui.runError, (r.data && r.data.error) || `Não foi possível iniciar (HTTP ${r.status}).`);
      }
      const loops = [pollLoop()];
      if (config.executor === "inline") loops.push(stepLoop());
      await Promise.all(loops);
    } catch (error) {
      if (error instanceof SessionExpired) sessionExpired();
      else throw error;
    }
  }

  // -- SyncControls ------------------------------------------------------------------------
  const selectedMode = () => document.querySelector('input[name="sync-mode"]:checked').value;

  // The controls under the modal show the run being followed (after a reload, its own mode).
  function syncControls(data) {
    if (!data.mode || FINAL.has(data.status)) return;
    const radio = document.querySelector(`input[name="sync-mode"][value="${data.mode}"]`);
    if (radio && !radio.checked) radio.checked = true;
    const month = (data.startDate || "").slice(0, 7);
    if (data.mode === "period" && month && [...ui.month.options].some((o) => o.value === month)) {
      ui.month.value = month;
    }
    ui.month.disabled = data.mode !== "period";
  }

  ui.month.disabled = selectedMode() !== "period"; // a choice made before this script ran
  for (const radio of document.querySelectorAll('input[name="sync-mode"]')) {
    radio.addEventListener("change", () => {
      ui.month.disabled = selectedMode() !== "period";
      if (!ui.month.disabled) ui.month.focus();
    });
  }

  ui.button.addEventListener("click", async () => {
    hide(ui.error);
    const body = { companyId: config.companyId, mode: selectedMode() };
    if (body.mode === "period") {
      if (!ui.month.value) {
        show(ui.error, "Escolha o mês a sincronizar.");
        ui.month.focus();
        return;
      }
      body.month = ui.month.value;
    }
    ui.button.disabled = true;
    ui.button.textContent = "Criando…";
    let r;
    try {
      // A retried create that had in fact succeeded answers 409 with that same run: followed.
      r = await retrying("criar a sincronização", () => call("POST", "/create", body), ui.error);
    } catch (error) {
      if (error instanceof SessionExpired) return sessionExpired();
      throw error;
    }
    if (r && (r.status === 200 || r.status === 201) && r.data.runId) {
      follow(r.data.runId);
    } else if (r && r.status === 409 && r.data && r.data.runId) {
      follow(r.data.runId, { resumed: true });
    } else {
      ui.button.disabled = false;
      ui.button.textContent = "Sincronizar";
      show(ui.error, (r && r.data && r.data.error) || "Não foi possível criar a sincronização.");
    }
  });

  // -- the modal: focus trap, Escape, buttons ---------------------------------------------------
  function openDialog() {
    ui.show.hidden = true;
    if (!ui.dialog.open) ui.dialog.showModal();
    ui.title.focus();
  }

  function focusables() {
    return [...ui.dialog.querySelectorAll("a[href], button, input, select, [tabindex]")].filter(
      (el) => !el.disabled && !el.hidden && el.tabIndex >= 0 && el.getClientRects().length > 0,
    );
  }

  ui.dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const items = focusables();
    if (items.length === 0) return event.preventDefault();
    const first = items[0];
    const last = items[items.length - 1];
    const inside = ui.dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside || document.activeElement === ui.title)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  // Escape fires "cancel" on a modal <dialog>: ignored while the run goes on.
  ui.dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    if (run.finished) closeAndReload();
  });

  // Chromium may close a modal dialog on a repeated Escape even when "cancel" is prevented.
  ui.dialog.addEventListener("close", () => {
    if (run.finished && !run.leaving) closeAndReload();
    else if (!run.finished) ui.show.hidden = false;
  });

  function closeAndReload() {
    run.leaving = true;
    if (ui.dialog.open) ui.dialog.close();
    const data = run.data || {};
    // After a month's sync show that month's reports; otherwise reload what was on screen.
    if (data.mode === "period" && data.startDate && data.startDate.slice(0, 7) === (data.endDate || "").slice(0, 7)) {
      const params = new URLSearchParams({ companyId: config.companyId, month: data.startDate.slice(0, 7) });
      location.assign(`${config.reportsUrl}?${params}`);
    } else {
      location.reload();
    }
  }

  ui.close.addEventListener("click", closeAndReload);

  ui.hide.addEventListener("click", () => {
    ui.dialog.close();
    ui.show.hidden = false;
    ui.show.focus();
  });
  ui.show.addEventListener("click", openDialog);

  ui.cancel.addEventListener("click", async () => {
    ui.cancel.disabled = true;
    ui.cancel.textContent = "Cancelando…";
    try {
      const r = await retrying("cancelar", () => call("POST", "/cancel", { runId: run.id }), ui.notice);
      if (r && r.status === 200) render(r.data);
      else if (r && r.status !== 409) {
        show(ui.runError, (r.data && r.data.error) || `Não foi possível cancelar (HTTP ${r.status}).`);
        ui.cancel.disabled = false;
        ui.cancel.textContent = "Cancelar";
        return;
      }
      if (!run.finished) await refreshStatus();
    } catch (error) {
      if (error instanceof SessionExpired) sessionExpired();
      else throw error;
    }
  });

  if (config.activeRunId) follow(config.activeRunId, { resumed: true });
})();
