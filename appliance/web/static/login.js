// The log-in and first-start forms: JSON to /auth/login or /auth/setup.
"use strict";

async function postJson(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data?.error?.message || `failed (${resp.status})`);
  return data;
}

document.addEventListener("DOMContentLoaded", () => {
  const errorEl = document.getElementById("login-error");
  const login = document.getElementById("login-form");
  if (login) {
    let kind = "pin";
    login.querySelectorAll("button[data-kind]").forEach((b) =>
      b.addEventListener("click", () => { kind = b.dataset.kind; }));
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const picked = login.querySelector('input[name="username"]:checked');
      const secret = login.querySelector("#secret").value;
      if (!picked) { errorEl.textContent = "Pick your name first."; return; }
      const body = { username: picked.value };
      body[kind === "password" ? "password" : "pin"] = secret;
      try {
        await postJson("/auth/login", body);
        window.location.href = login.dataset.next || "/";
      } catch (e) {
        errorEl.textContent = e.message;
        login.querySelector("#secret").select();
      }
    });
  }
  const setup = document.getElementById("setup-form");
  if (setup) {
    setup.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(setup);
      const body = {
        code: f.get("code"), username: f.get("username"), name: f.get("name"),
        password: f.get("password"),
      };
      if (f.get("pin")) body.pin = f.get("pin");
      try {
        await postJson("/auth/setup", body);
        window.location.href = "/";
      } catch (e) {
        errorEl.textContent = e.message;
      }
    });
  }
});
