// Admin pages: forms and buttons that call the JSON API, and the catalog import.
"use strict";

function formBody(form) {
  const body = {};
  const pathValues = {};
  for (const el of form.querySelectorAll("input[name], select[name]")) {
    const name = el.name;
    if (el.dataset.bool !== undefined) {
      body[name] = el.checked;
      continue;
    }
    let value = el.value.trim();
    pathValues[name] = value;
    if (el.dataset.pathOnly !== undefined) continue;
    if (el.dataset.optional !== undefined && value === "") continue;
    if (el.dataset.intList !== undefined) {
      const numbers = value.split(/[\s,]+/).filter(Boolean).map(Number);
      if (!numbers.length || numbers.some((n) => !Number.isInteger(n))) {
        throw new Error(`${el.labels[0]?.textContent || name}: whole numbers like 2, 3`);
      }
      body[name] = numbers;
      continue;
    }
    if (el.dataset.money !== undefined) {
      const minor = toMinor(value);
      if (minor === null) throw new Error(`${el.labels[0]?.textContent || name}: enter an amount like 12.50`);
      body[name] = minor;
      continue;
    }
    body[name] = value;
  }
  return { body, pathValues };
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key] ?? ""));
}

function result(text, ok) {
  const el = document.getElementById("action-result");
  el.textContent = text;
  el.className = "action-result " + (ok ? "ok" : "bad");
}

async function run(el, body, pathValues) {
  try {
    const data = await api(el.dataset.method, fill(el.dataset.path, pathValues), body);
    if (el.dataset.then) {
      window.location.href = fill(el.dataset.then, data || {});
    } else if (el.dataset.reload !== undefined) {
      window.location.reload();
    } else {
      result("Done.", true);
    }
  } catch (err) {
    const field = err.error?.field ? ` (${err.error.field})` : "";
    result(err.message + field, false);
  }
}

function showImportErrors(box, err) {
  box.innerHTML = "";
  const title = document.createElement("p");
  title.className = "error";
  const errors = err.error?.errors || [];
  title.textContent = errors.length
    ? `Nothing imported: ${errors.length} problem(s).`
    : err.message;
  box.appendChild(title);
  if (errors.length) {
    const list = document.createElement("ul");
    list.className = "import-errors";
    errors.forEach((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
    box.appendChild(list);
  }
}

// Tables filled from a JSON route of another feature (e.g. the LAN register list).
async function fillTable(table) {
  const body = table.querySelector("tbody");
  try {
    const data = await api("GET", table.dataset.source);
    const rows = table.dataset.key ? data[table.dataset.key] : data;
    body.innerHTML = "";
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const column of table.dataset.columns.split(" ")) {
        const td = document.createElement("td");
        td.textContent = row[column] ?? "";
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  } catch (err) {
    body.innerHTML = "";
    const tr = body.insertRow();
    tr.insertCell().textContent = err.message;
  }
}

// The settings page: every field is a dotted setting key (appliance/settings.py).
function settingsChanges(form) {
  const changes = {};
  const label = (el) => el.labels?.[0]?.textContent || el.name;
  for (const el of form.querySelectorAll("[name]")) {
    const key = el.name;
    if (el.dataset.multi !== undefined) {
      changes[key] = changes[key] || [];
      if (el.checked) changes[key].push(el.value);
    } else if (el.dataset.bool !== undefined) {
      changes[key] = el.checked;
    } else if (el.dataset.key !== undefined) {
      changes[key] = changes[key] || {};
      if (el.value) changes[key][el.dataset.key] = el.value;
    } else if (el.dataset.lines !== undefined) {
      changes[key] = el.value.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim());
    } else if (el.dataset.money !== undefined) {
      const minor = toMinor(el.value.trim());
      if (minor === null) throw new Error(`${label(el)}: enter an amount like 12.50`);
      changes[key] = minor;
    } else if (el.dataset.int !== undefined) {
      const n = Number(el.value.trim());
      if (!Number.isInteger(n)) throw new Error(`${label(el)}: a whole number`);
      changes[key] = n;
    } else if (el.dataset.number !== undefined) {
      const n = Number(el.value.trim());
      if (el.value.trim() === "" || Number.isNaN(n)) throw new Error(`${label(el)}: a number`);
      changes[key] = n;
    } else {
      changes[key] = el.value;
    }
  }
  return changes;
}

document.addEventListener("DOMContentLoaded", () => {
  const settingsForm = document.getElementById("settings-form");
  if (settingsForm) {
    settingsForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("PUT", "/api/settings", { changes: settingsChanges(settingsForm) });
        result("Settings saved: in force now.", true);
      } catch (err) {
        const field = err.error?.field ? ` (${err.error.field})` : "";
        result(err.message + field, false);
      }
    });
  }
  document.querySelectorAll("table[data-source]").forEach(fillTable);
  document.querySelectorAll("form.api-form").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      try {
        const { body, pathValues } = formBody(form);
        run(form, body, pathValues);
      } catch (err) {
        result(err.message, false);
      }
    });
  });
  document.querySelectorAll("button.api-button").forEach((button) => {
    button.addEventListener("click", () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      run(button, body, {});
    });
  });
  const importForm = document.getElementById("catalog-import");
  if (importForm) {
    importForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const box = document.getElementById("import-errors");
      const file = document.getElementById("catalog-file").files[0];
      if (!file) { box.textContent = "Choose a CSV file first."; return; }
      try {
        const data = await api("POST", "/api/catalog/import", undefined, { raw: await file.text() });
        box.innerHTML = "";
        result(`Imported ${data.imported} products.`, true);
      } catch (err) {
        showImportErrors(box, err);
      }
    });
  }
});
