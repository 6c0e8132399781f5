/* A bulk fill's batch page: reads the status URL every 1.5 s until every job
   has ended and updates the counts, the bar and each row (status, image,
   result, its retry/attach/discard forms). The forms are plain POSTs, so the
   page works without this script; it only saves the reloads. */
(function () {
  "use strict";
  const root = document.querySelector("[data-status-url]");
  if (!root) return;
  const url = root.dataset.statusUrl;
  const count = document.getElementById("imagegen-fill-count");
  const bar = document.getElementById("imagegen-fill-bar");
  const csrf = document.querySelector("#imagegen-fill-csrf input[name=csrfmiddlewaretoken]");

  function cell(row, name) {
    return row.querySelector(".imagegen-fill-" + name);
  }

  function actions(list) {
    const fragment = document.createDocumentFragment();
    for (const action of list) {
      const form = document.createElement("form");
      form.method = "post";
      form.action = action.url;
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrfmiddlewaretoken";
      token.value = csrf ? csrf.value : "";
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "button";
      button.dataset.action = action.name;
      button.textContent = action.label;
      form.append(token, button);
      fragment.append(form);
    }
    return fragment;
  }

  function render(data) {
    const summary = data.summary;
    // One sentence with named placeholders (the template's, from the djangojs
    // catalog): word order and agreement are the translation's.
    const sentence = ngettext(
      "%(finished)s of %(total)s finished",
      "%(finished)s of %(total)s finished",
      summary.finished
    );
    count.textContent = interpolate(sentence, summary, true);
    count.dataset.done = data.done ? "true" : "false";
    bar.style.width = (summary.total ? (100 * summary.finished) / summary.total : 0) + "%";
    bar.parentElement.setAttribute("aria-valuenow", summary.finished);
    const body = document.querySelector("#imagegen-fill-rows tbody");
    for (const item of data.rows) {
      let row = body.querySelector('tr[data-job="' + item.job + '"]');
      if (!row) {
        // A retry: its new job replaces the failed one's row.
        row = [...body.rows].find((r) => r.dataset.object === item.object_id);
      }
      if (!row) continue;
      row.dataset.job = item.job;
      row.dataset.object = item.object_id;
      if (row.dataset.status !== item.status || row.dataset.outcome !== item.outcome) {
        row.dataset.status = item.status;
        row.dataset.outcome = item.outcome;
        const status = cell(row, "status");
        status.textContent = item.status_display;
        if (item.error) {
          const error = document.createElement("div");
          error.className = "imagegen-fill-error";
          error.textContent = item.error;
          status.append(error);
        }
        cell(row, "outcome").textContent = item.outcome_display;
        const actionCell = cell(row, "actions");
        actionCell.replaceChildren(actions(item.actions));
      }
      const image = cell(row, "image");
      if (item.image && !image.querySelector("img")) {
        const img = document.createElement("img");
        img.src = item.image;
        img.alt = "";
        img.width = 64;
        image.append(img);
      }
    }
    // Done once every job ended and, unless an editor reviews them, every
    // succeeded one is attached (that follows the job's end by a moment).
    return data.done && (data.review || data.rows.every((r) => r.status !== "succeeded" || r.outcome));
  }

  async function tick() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok && render(await response.json())) return;
    } catch (error) {
      // A lost answer: the next tick asks again.
    }
    window.setTimeout(tick, 1500);
  }

  window.setTimeout(tick, 500);
})();
