// Shared by every page: the JSON API with the session's CSRF token, money input,
// dialogs, log-out. No build step: plain modern JavaScript served as it is.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const DECIMALS = Number(document.querySelector('meta[name="currency-decimals"]')?.content || 2);

class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `request failed (${status})`);
    this.status = status;
    this.error = error || {};
  }
}

// Ask for a supervisor's approval when the user lacks a permission; pages that can
// (the sell screen) set this to a function returning a promise of true/false.
let requestApproval = null;

async function api(method, path, body, options = {}) {
  const headers = { "X-CSRF-Token": CSRF };
  let payload;
  if (options.raw !== undefined) {
    payload = options.raw;
    headers["Content-Type"] = options.contentType || "text/csv";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: { message: text } }; }
  if (resp.status === 401) {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    throw new ApiError(401, data?.error);
  }
  if (resp.status === 403 && data?.error?.code === "permission" && requestApproval && !options.approved) {
    if (await requestApproval(data.error.permission, data.error.message)) {
      return api(method, path, body, { ...options, approved: true });
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data?.error);
  return data;
}

async function fragment(url) {
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (resp.status === 401 || resp.redirected) {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
  }
  if (!resp.ok) throw new ApiError(resp.status, { message: `could not load ${url}` });
  return resp.text();
}

// "12.34" / "12,34" / "12" → 1234 minor units; null when it is not an amount.
function toMinor(text) {
  const s = String(text || "").trim().replace(",", ".");
  const re = DECIMALS ? new RegExp(`^\\d{1,9}(\\.\\d{1,${DECIMALS}})?$`) : /^\d{1,12}$/;
  if (!re.test(s)) return null;
  const [whole, frac = ""] = s.split(".");
  return Number(whole) * 10 ** DECIMALS + Number((frac + "000").slice(0, DECIMALS) || 0);
}

function formatMinor(minor) {
  const sign = minor < 0 ? "-" : "";
  const v = Math.abs(minor);
  if (!DECIMALS) return sign + v;
  const whole = Math.floor(v / 10 ** DECIMALS);
  const frac = String(v % 10 ** DECIMALS).padStart(DECIMALS, "0");
  return `${sign}${whole}.${frac}`;
}

function openDialog(dialog) {
  if (typeof dialog === "string") dialog = document.getElementById(dialog);
  dialog.querySelectorAll("[data-error]").forEach((el) => { el.textContent = ""; });
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("input:not([disabled]), button.primary, button");
  if (first) first.focus();
  return dialog;
}

function closeDialog(dialog) {
  if (typeof dialog === "string") dialog = document.getElementById(dialog);
  if (dialog.open) dialog.close();
}

function showError(dialog, err) {
  const el = dialog.querySelector("[data-error]");
  if (el) el.textContent = err.message || String(err);
}

document.addEventListener("click", (ev) => {
  const closer = ev.target.closest("[data-close]");
  if (closer) closeDialog(closer.closest("dialog"));
  const opener = ev.target.closest("[data-open]");
  if (opener) openDialog(opener.dataset.open);
});

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try { await api("POST", "/auth/logout"); } finally { window.location.href = "/login"; }
    });
  }
});
