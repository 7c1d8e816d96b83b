// The sell screen: live cart over Server-Sent Events, scans, quick keys, tender,
// park/resume, customers, discounts with approval, refunds and receipts.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { saleId: "", status: "none", tenders: 0, due: 0, total: 0, lines: 0, online: true };
let cueTimer = null;
let lastBeep = 0;
let weighSku = null;
let lineNo = null;

function cue(text, ok) {
  const el = $("cue");
  el.textContent = text;
  el.className = "cue " + (ok ? "ok" : "bad");
  if (!ok) beep();
  clearTimeout(cueTimer);
  cueTimer = setTimeout(() => { el.textContent = ""; el.className = "cue"; }, ok ? 2500 : 6000);
}

function beep() {
  const now = Date.now();
  if (now - lastBeep < 400) return;
  lastBeep = now;
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    [0, 0.18].forEach((at) => {
      const osc = ctx.createOscillator();
      osc.frequency.value = 220;
      osc.connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.12);
    });
  } catch (e) { /* no audio: the visual cue stays */ }
}

function focusScan() {
  if (!document.querySelector("dialog[open]")) $("scan").focus();
}

let cartLoads = 0;
let cartLatest = Promise.resolve();

// Show a sale (or, with "", the register's current one). Loads can overlap (a click
// and an event): only the latest one asked for is shown, and every caller resumes
// once the latest has been shown, so what it reads next is current.
async function loadCart(saleId) {
  const mine = ++cartLoads;
  state.saleId = saleId;
  cartLatest = applyCart(mine, saleId).catch(() => {});
  let seen;
  do {
    seen = cartLatest;
    await seen;
  } while (seen !== cartLatest);
}

async function applyCart(mine, saleId) {
  const url = "/sell/cart" + (saleId ? "?sale_id=" + encodeURIComponent(saleId) : "");
  const html = await fragment(url);
  if (mine !== cartLoads) return;
  $("cart").innerHTML = html;
  const doc = $("cart-doc");
  state.saleId = doc.dataset.saleId;
  state.status = doc.dataset.status;
  state.tenders = Number(doc.dataset.tenders);
  state.due = Number(doc.dataset.due);
  state.total = Number(doc.dataset.total);
  state.lines = doc.querySelectorAll("button.line").length;
  const payable = state.status === "open" && state.lines > 0;
  $("pay-btn").disabled = !payable;
  $("pay-amount").textContent = payable ? formatMinor(state.tenders ? state.due : state.total) : "";
}

async function loadBanners() {
  try { $("banners").innerHTML = await fragment("/sell/banners"); } catch (e) { /* next event retries */ }
}

function editableSale() {
  return state.saleId && state.status === "open" && state.tenders === 0 ? state.saleId : null;
}

async function ensureSale() {
  const id = editableSale();
  if (id) return id;
  const sale = await api("POST", "/api/sales");
  state.saleId = sale.id;
  state.status = "open";
  state.tenders = 0;
  return sale.id;
}

function describe(err) {
  const e = err.error || {};
  if (e.code === "misread") return `Misread — scan again (${e.message.replace(/^misread: /, "")})`;
  if (e.code === "not_found") return `Not found: ${e.value ?? ""} — ${e.message}`;
  return err.message;
}

// A scan or typed code: barcode/SKU first, then name search.
async function submitCode(code) {
  code = code.trim();
  if (!code) return;
  try {
    const result = await api("POST", "/api/scan", { code, sale_id: editableSale() });
    if (result.action === "receipt") {
      openRefund(result.receipt_no);
      return;
    }
    await loadCart(result.sale.id);
    $("search-results").innerHTML = "";
    cue(result.action === "customer" ? `Customer ${result.customer.name}` :
      `Added ${result.line.name}`, true);
  } catch (err) {
    const e = err.error || {};
    if (e.field === "weight_g") {
      try {
        const product = await api("GET", "/api/catalog/lookup?code=" + encodeURIComponent(code));
        askWeight(product.sku, product.name);
        return;
      } catch (ignored) { /* fall through to the cue */ }
    }
    if (e.code === "not_found" && !/^\d+$/.test(code)) {
      const html = await fragment("/sell/search?q=" + encodeURIComponent(code));
      $("search-results").innerHTML = html;
      if ($("search-results").querySelector("button.result")) {
        cue(`No barcode or SKU “${code}”: pick a product below`, true);
        return;
      }
    }
    cue(describe(err), false);
  }
}

async function addSku(sku, weightG) {
  try {
    const id = await ensureSale();
    const body = weightG ? { code: sku, weight_g: weightG } : { code: sku };
    const sale = await api("POST", `/api/sales/${id}/lines`, body);
    await loadCart(sale.id);
    cue(`Added ${sale.lines[sale.lines.length - 1].name}`, true);
  } catch (err) {
    cue(describe(err), false);
  }
}

function askWeight(sku, name) {
  weighSku = sku;
  $("weight-name").textContent = name;
  $("weight-g").value = "";
  openDialog("weight-dialog");
}

function pick(button) {
  if (button.dataset.weighed) askWeight(button.dataset.sku, button.dataset.name);
  else addSku(button.dataset.sku);
  $("search-results").innerHTML = "";
  $("scan").value = "";
}

// payment --------------------------------------------------------------------------
function openPay(status = "") {
  if ($("pay-btn").disabled) return;
  const due = state.tenders ? state.due : state.total;
  $("pay-due").textContent = formatMinor(due);
  $("tender-amount").value = formatMinor(due);
  $("card-status").textContent = status;
  if ($("no-receipt")) $("no-receipt").checked = state.noReceiptFor === state.saleId;
  const notes = [500, 1000, 2000, 5000, 10000].map((n) => n * 10 ** (DECIMALS - 2));
  const options = [due, ...notes.filter((n) => n > due).slice(0, 3)];
  $("quick-cash").innerHTML = "";
  options.forEach((amount, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = i === 0 ? `Exact ${formatMinor(amount)}` : formatMinor(amount);
    b.addEventListener("click", () => tender("cash", amount));
    $("quick-cash").appendChild(b);
  });
  const doc = $("cart-doc");
  $("pay-tenders").textContent = Number(doc.dataset.paid) ? `Paid so far: ${formatMinor(Number(doc.dataset.paid))}` : "";
  openDialog("pay-dialog");
}

async function tender(kind, amount) {
  const dialog = $("pay-dialog");
  if (amount === null || amount <= 0) {
    showError(dialog, { message: "Enter an amount like 12.50" });
    return;
  }
  try {
    await receiptChoice();
    let sale;
    if (kind === "card" && $("main").dataset.cardTerminal) {
      sale = await cardPayment(amount);
      if (!sale) return;
    } else {
      const body = { kind, amount_minor: amount };
      if (kind === "card") body.reference = "card on a standalone terminal";
      sale = await api("POST", `/api/sales/${state.saleId}/tenders`, body);
    }
    await loadCart(sale.id);
    if (sale.status === "completed") {
      closeDialog(dialog);
      showReceipt(sale.id, true);
    } else {
      openPay($("card-status").textContent);  // split tender: the rest is still due
    }
  } catch (err) {
    $("card-status").textContent = "";
    showError(dialog, err);
  }
}

// A card payment through the terminal: its statuses ("insert card", "PIN") are shown
// as they come; the sale is returned when approved, null when it did not go through.
async function cardPayment(amount) {
  const status = $("card-status");
  const abort = $("pay-abort");
  status.textContent = "Card payment: starting…";
  let payment;
  try {
    payment = await api("POST", `/api/sales/${state.saleId}/payments`, { amount_minor: amount });
  } catch (err) {
    const e = err.error || {};
    if (e.code === "card_offline_refused") {
      const other = (e.other_tenders || []).join(", ");
      throw new Error(`${err.message}${other ? ` (other tenders: ${other})` : ""}`);
    }
    throw err;
  }
  abort.hidden = false;
  abort.onclick = () => api("POST", `/api/payments/${payment.id}/abort`).catch(() => {});
  const final = await new Promise((resolve) => {
    const es = new EventSource(`/api/payments/${payment.id}/events`);
    es.addEventListener("payment", (e) => {
      const doc = JSON.parse(e.data);
      status.textContent = `Card: ${doc.status_text || doc.state.replace("_", " ")}`;
      if (["approved", "declined", "aborted", "unknown"].includes(doc.state)) {
        es.close();
        resolve(doc);
      }
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        api("GET", `/api/payments/${payment.id}`).then(resolve, () => resolve(payment));
      }
    };
  });
  abort.hidden = true;
  if (final.state === "approved") {
    status.textContent = `Card approved${final.offline ? " (offline: forwarded later)" : ""}`;
    return api("GET", `/api/sales/${state.saleId}`);
  }
  const why = final.message ? `: ${final.message}` : "";
  status.textContent = final.state === "unknown"
    ? "Card result unknown: the terminal is asked again; do not charge twice"
    : `Card ${final.state}${why}`;
  return null;
}

function requestId() {
  const random = new Uint32Array(4);
  crypto.getRandomValues(random);
  return Array.from(random, (n) => n.toString(16).padStart(8, "0")).join("");
}

// "No receipt": said before the tender that completes the sale, so no job is queued.
async function receiptChoice() {
  const box = $("no-receipt");
  if (!box) return;
  if (box.checked && state.noReceiptFor !== state.saleId) {
    await api("PUT", `/api/printer/receipts/${state.saleId}`, { print: false });
    state.noReceiptFor = state.saleId;
  } else if (!box.checked && state.noReceiptFor === state.saleId) {
    await api("PUT", `/api/printer/receipts/${state.saleId}`, { print: true });
    state.noReceiptFor = null;
  }
}

async function printOriginal(button) {
  const doc = $("receipt-doc");
  button.disabled = true;  // one request per press: the queue prints it once
  try {
    await api("PUT", `/api/printer/receipts/${doc.dataset.saleId}`, { print: true });
    $("receipt-body").innerHTML = await fragment("/sell/receipt?sale_id=" + doc.dataset.saleId);
  } catch (err) {
    button.disabled = false;
    showError($("receipt-dialog"), err);
  }
}

async function showReceipt(saleId, fresh) {
  $("receipt-title").textContent = fresh ? "Sale complete" : "Last receipt";
  $("receipt-body").innerHTML = await fragment("/sell/receipt" + (saleId ? "?sale_id=" + saleId : ""));
  openDialog("receipt-dialog");
}

async function finishReceipt(print) {
  const doc = $("receipt-doc");
  const dialog = $("receipt-dialog");
  if (print && doc) {
    const button = document.querySelector("[data-receipt-print]");
    if (button) button.disabled = true;  // one copy per press
    try {
      // A COPY of this register's last receipt; the id makes a resent request one copy.
      await api("POST", "/api/printer/reprint-last", { request_id: requestId() });
    } catch (err) {
      showError(dialog, err);
      return;
    }
  }
  closeDialog(dialog);
  if (state.status !== "open") await loadCart("");
  focusScan();
}

// refunds ---------------------------------------------------------------------------
async function openRefund(receiptNo) {
  openDialog("refund-dialog");
  $("refund-ok").disabled = true;
  $("refund-body").innerHTML = "";
  if (receiptNo) {
    $("refund-receipt").value = receiptNo;
    await findRefund();
  }
}

async function findRefund() {
  const receipt = $("refund-receipt").value.trim();
  if (!receipt) return;
  $("refund-body").innerHTML = await fragment("/sell/refund?receipt=" + encodeURIComponent(receipt));
  $("refund-ok").disabled = !$("refund-form");
}

async function doRefund() {
  const form = $("refund-form");
  const dialog = $("refund-dialog");
  try {
    const rows = [...form.querySelectorAll("input[data-line]")]
      .map((i) => ({ line: Number(i.dataset.line), qty: Number(i.value) }))
      .filter((r) => r.qty > 0);
    if (!rows.length) throw new Error("Enter what to refund");
    const refund = await api("POST", "/api/refunds", { receipt_no: form.dataset.receipt });
    for (const r of rows) {
      await api("POST", `/api/refunds/${refund.id}/lines`, { original_line_no: r.line, qty: r.qty });
    }
    let done;
    try {
      done = await api("POST", `/api/refunds/${refund.id}/complete`, {});
    } catch (err) {
      // Card money goes back only through the terminal (the card payments feature).
      if (!(err.error?.message || "").includes(`/api/refunds/${refund.id}/card`)) throw err;
      showError(dialog, { message: "Refunding to the card through the terminal…" });
      done = await api("POST", `/api/refunds/${refund.id}/card`);
    }
    closeDialog(dialog);
    await loadCart(done.id);
    showReceipt(done.id, true);
  } catch (err) {
    showError(dialog, err);
  }
}

// approvals ---------------------------------------------------------------------------
const PERMISSION_TEXT = {
  discount: "a price override or discount", void: "voiding a sale",
  refund: "a refund", shift: "shift and cash operations",
};

requestApproval = (permission, message) => new Promise((resolve) => {
  const dialog = $("approve-dialog");
  $("approve-what").textContent = `${message}. A supervisor can approve ${PERMISSION_TEXT[permission] || permission}.`;
  $("approve-user").value = "";
  $("approve-secret").value = "";
  const previous = document.querySelector("dialog[open]:not(#approve-dialog)");
  openDialog(dialog);
  const finish = (ok) => {
    $("approve-ok").onclick = null;
    dialog.onclose = null;
    closeDialog(dialog);
    if (previous && !previous.open) previous.showModal();
    resolve(ok);
  };
  $("approve-ok").onclick = async () => {
    try {
      await api("POST", "/auth/approve", {
        username: $("approve-user").value.trim(), secret: $("approve-secret").value, permission,
      });
      finish(true);
    } catch (err) {
      showError(dialog, err);
    }
  };
  dialog.onclose = () => finish(false);
});

// live updates -------------------------------------------------------------------------
let offlineTimer = null;
function setOnline(online) {
  state.online = online;
  clearTimeout(offlineTimer);
  if (online) {
    $("offline-banner").hidden = true;
    $("link-state").textContent = "Connected";
    $("link-state").className = "pill ok";
  } else {
    offlineTimer = setTimeout(() => {
      $("offline-banner").hidden = false;
      $("link-state").textContent = "Offline";
      $("link-state").className = "pill bad";
    }, 1500);
  }
}

function connectEvents() {
  const es = new EventSource("/events");
  es.addEventListener("hello", () => {
    setOnline(true);
    loadCart(state.saleId && state.status === "open" ? state.saleId : "");
    loadBanners();
  });
  es.addEventListener("sale", (e) => {
    const ev = JSON.parse(e.data);
    const mine = ev.register_id === document.getElementById("main").dataset.register;
    if (ev.sale_id === state.saleId) {
      loadCart(state.saleId);
    } else if (mine && state.status !== "open" && ev.kinds.some((k) => k === "sale.line_add" || k === "sale.resume")) {
      loadCart(ev.sale_id);
    }
    if ($("parked-dialog").open) loadParked();
  });
  es.addEventListener("scan", (e) => {
    const ev = JSON.parse(e.data);
    if (!ev.ok) {
      cue(describe({ error: ev.error, message: ev.error.message }), false);
    } else if (ev.action === "receipt") {
      openRefund(ev.receipt_no);
    } else if (ev.sale_id && ev.sale_id !== state.saleId && state.status !== "open") {
      loadCart(ev.sale_id);
    }
  });
  ["shift", "catalog", "users", "status"].forEach((t) => es.addEventListener(t, loadBanners));
  es.onerror = async () => {
    setOnline(false);
    if (es.readyState === EventSource.CLOSED) {
      // The register answered but refused the stream (restarted: the session is gone).
      setTimeout(async () => {
        try {
          const resp = await fetch("/auth/me", { credentials: "same-origin" });
          if (resp.status === 401) { window.location.href = "/login"; return; }
        } catch (ignored) { /* still unreachable */ }
        connectEvents();
      }, 2000);
    }
  };
}

async function loadParked() {
  $("parked-list").innerHTML = await fragment("/sell/parked");
}

// wiring --------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  const main = $("main");
  state.saleId = main.dataset.saleId || "";
  loadCart(state.saleId);
  loadBanners();
  connectEvents();
  setInterval(loadBanners, 30000);

  $("scan-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = $("scan").value;
    $("scan").value = "";
    submitCode(code);
  });
  let searchTimer = null;
  $("scan").addEventListener("input", () => {
    clearTimeout(searchTimer);
    const q = $("scan").value.trim();
    if (q.length < 2 || /^\d+$/.test(q)) { $("search-results").innerHTML = ""; return; }
    searchTimer = setTimeout(async () => {
      $("search-results").innerHTML = await fragment("/sell/search?q=" + encodeURIComponent(q));
    }, 250);
  });
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.qk[data-sku], button.result[data-sku]");
    if (b) pick(b);
    const resume = ev.target.closest("button[data-resume]");
    if (resume) {
      // With LAN sync, a sale parked on another register is resumed through it.
      const base = $("main").dataset.lan ? "/api/lan/sales" : "/api/sales";
      api("POST", `${base}/${resume.dataset.resume}/resume`)
        .then((sale) => { closeDialog("parked-dialog"); return loadCart(sale.id); })
        .catch((err) => showError($("parked-dialog"), err));
    }
    const line = ev.target.closest("button.line");
    if (line) {
      lineNo = Number(line.dataset.line);
      $("line-title").textContent = line.dataset.name;
      $("line-qty-label").textContent = line.dataset.unit === "g" ? "Weight in grams" : "Quantity";
      $("line-qty").value = line.dataset.qty;
      ["line-price", "line-reason", "line-discount"].forEach((id) => { $(id).value = ""; });
      openDialog("line-dialog");
    }
    if (ev.target.closest("[data-receipt-print]")) finishReceipt(true);
    if (ev.target.closest("[data-receipt-none]")) finishReceipt(false);
    const original = ev.target.closest("[data-receipt-original]");
    if (original) printOriginal(original);
  });
  $("weight-ok").addEventListener("click", () => {
    const grams = Number($("weight-g").value);
    if (!Number.isInteger(grams) || grams < 1) {
      showError($("weight-dialog"), { message: "Enter the weight in whole grams" });
      return;
    }
    closeDialog("weight-dialog");
    addSku(weighSku, grams);
  });
  $("pay-btn").addEventListener("click", () => openPay());
  $("pay-cash").addEventListener("click", () => tender("cash", toMinor($("tender-amount").value)));
  $("pay-card").addEventListener("click", () => {
    const amount = toMinor($("tender-amount").value);
    tender("card", amount === null ? null : Math.min(amount, state.tenders ? state.due : state.total));
  });
  $("park-btn").addEventListener("click", () => { $("park-name").value = ""; });
  $("park-ok").addEventListener("click", async () => {
    const dialog = $("park-dialog");
    try {
      if (!editableSale()) throw new Error("Nothing to park");
      await api("POST", `/api/sales/${state.saleId}/park`, { name: $("park-name").value.trim() || "tab" });
      closeDialog(dialog);
      await loadCart("");
      cue("Sale parked", true);
    } catch (err) { showError(dialog, err); }
  });
  $("parked-btn").addEventListener("click", async () => {
    openDialog("parked-dialog");
    await loadParked();
  });
  $("customer-ok").addEventListener("click", async () => {
    const dialog = $("customer-dialog");
    try {
      const id = await ensureSale();
      const sale = await api("POST", `/api/sales/${id}/customer`, { code: $("customer-code").value.trim() });
      closeDialog(dialog);
      await loadCart(sale.id);
    } catch (err) { showError(dialog, err); }
  });
  $("nc-ok").addEventListener("click", async () => {
    // A new customer at the counter (also offline: new customers are allowed then).
    const dialog = $("customer-dialog");
    try {
      const body = { code: $("nc-code").value.trim(), name: $("nc-name").value.trim() };
      if ($("nc-email").value.trim()) body.email = $("nc-email").value.trim();
      const customer = await api("POST", "/api/customers", body);
      const id = await ensureSale();
      const sale = await api("POST", `/api/sales/${id}/customer`, { code: customer.code });
      closeDialog(dialog);
      cue(`Customer ${customer.name} created`, true);
      await loadCart(sale.id);
    } catch (err) { showError(dialog, err); }
  });
  $("np-ok").addEventListener("click", async () => {
    // A new product at the counter: needs 'catalog' (a manager can approve it).
    const dialog = $("product-dialog");
    try {
      const sku = $("np-sku").value.trim();
      const price = toMinor($("np-price").value);
      if (!sku) throw new Error("SKU: enter one");
      if (price === null) throw new Error("Price: enter an amount like 12.50");
      const weighed = $("np-weighed").checked;
      const body = {
        sku, name: $("np-name").value.trim(), price_minor: price,
        tax_category: $("np-tax").value, sold_by: weighed ? "weight" : "unit",
        barcodes: $("np-barcode").value.trim() ? [$("np-barcode").value.trim()] : [],
      };
      const product = await api("PUT", `/api/products/${encodeURIComponent(sku)}?new=true`, body);
      closeDialog(dialog);
      cue(`Product ${product.name} created`, true);
      if (weighed) askWeight(product.sku, product.name); else await addSku(product.sku);
    } catch (err) { showError(dialog, err); }
  });
  $("customer-clear").addEventListener("click", async () => {
    const dialog = $("customer-dialog");
    try {
      if (state.saleId) await api("POST", `/api/sales/${state.saleId}/customer`, { code: null });
      closeDialog(dialog);
      await loadCart(state.saleId);
    } catch (err) { showError(dialog, err); }
  });
  $("discount-ok").addEventListener("click", async () => {
    const dialog = $("discount-dialog");
    try {
      if (!editableSale()) throw new Error("No sale to discount");
      const pct = $("discount-percent").value.trim();
      const amount = $("discount-amount").value.trim();
      const body = pct ? { percent_bp: Math.round(Number(pct.replace(",", ".")) * 100) } : { amount_minor: toMinor(amount) };
      await api("POST", `/api/sales/${state.saleId}/discount`, body);
      closeDialog(dialog);
      await loadCart(state.saleId);
    } catch (err) { showError(dialog, err); }
  });
  const lineAction = async (fn) => {
    const dialog = $("line-dialog");
    try {
      await fn();
      closeDialog(dialog);
      await loadCart(state.saleId);
    } catch (err) { showError(dialog, err); }
  };
  $("line-qty-ok").addEventListener("click", () => lineAction(() =>
    api("PATCH", `/api/sales/${state.saleId}/lines/${lineNo}`, { qty: Number($("line-qty").value) })));
  $("line-price-ok").addEventListener("click", () => lineAction(() =>
    api("POST", `/api/sales/${state.saleId}/lines/${lineNo}/price`, {
      unit_price_minor: toMinor($("line-price").value), reason: $("line-reason").value.trim() || "price override",
    })));
  $("line-discount-ok").addEventListener("click", () => lineAction(() =>
    api("POST", `/api/sales/${state.saleId}/lines/${lineNo}/discount`, {
      percent_bp: Math.round(Number($("line-discount").value.replace(",", ".")) * 100),
    })));
  $("line-void").addEventListener("click", () => lineAction(() =>
    api("DELETE", `/api/sales/${state.saleId}/lines/${lineNo}`)));
  $("void-btn").addEventListener("click", async () => {
    if (!state.saleId || state.status !== "open") { cue("No open sale to void", false); return; }
    if (!window.confirm("Void this sale? It is kept as voided.")) return;
    try {
      await api("POST", `/api/sales/${state.saleId}/void`, { reason: "voided at the counter" });
      await loadCart("");
      cue("Sale voided", true);
    } catch (err) { cue(err.message, false); }
  });
  $("refund-find").addEventListener("click", findRefund);
  $("refund-receipt").addEventListener("keydown", (ev) => { if (ev.key === "Enter") findRefund(); });
  $("refund-ok").addEventListener("click", doRefund);
  $("reprint-btn").addEventListener("click", () => showReceipt("", false));
  document.querySelectorAll("dialog").forEach((d) => d.addEventListener("close", focusScan));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "F2") { ev.preventDefault(); openPay(); }
    if (ev.key === "F4") { ev.preventDefault(); openDialog("park-dialog"); }
    if (ev.key === "F8") { ev.preventDefault(); openDialog("customer-dialog"); }
  });
});
