"""The sell screen and the admin panel in a real browser (Debian chromium, Playwright)
against a real `appliance run` process on loopback.

One register process serves the module; the tests run in order, as a shop's day:
first start and setup, a sale scanned by a replayed scanner recording, parking and
resuming, a refund from the scanned receipt, the admin panel, and last the register
going away (the offline banner). Screenshots of the main screens go to the test's
folder, and to docs/screenshots when APPLIANCE_SCREENSHOTS=docs/screenshots is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from hil.scanner_replay import replay_recording
from tests.conftest import ROOT, RegisterProcess, free_port
from tests.sync_support import (
    FAST_SYNC,
    Admin,
    BackOfficeProcess,
    ProxyProcess,
    add_stores,
    seed,
    wait_until,
)

RECORDINGS = ROOT / "hil" / "recordings" / "scanners"
VIEWPORT = {"width": 1024, "height": 768}
WAIT_MS = 10_000


def decoded(recording: str) -> list[str]:
    """Scans of a recording, decoded by the real wedge decoder (as `hil replay-scanner`)."""
    codes: list[str] = []
    text = (RECORDINGS / recording).read_text(encoding="utf-8")
    # Playwright's sync API keeps an event loop on this thread: decode on another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, replay_recording(text, on_scan=codes.append)).result(30)
    return codes


class Shop:
    """The register under test and the helpers to act on it as people and machines."""

    def __init__(self, proc: RegisterProcess, shots: Path) -> None:
        self.proc = proc
        self.shots = shots
        self.api = proc.client()

    def ok(self, resp: httpx.Response) -> Any:
        assert resp.status_code < 400, resp.text
        return resp.json()

    def shot(self, page: Any, name: str) -> None:
        shot(page, self.shots, name)


def shot(page: Any, folder: Path, name: str) -> None:
    """A screenshot into ``folder``, and into docs/screenshots when asked
    (APPLIANCE_SCREENSHOTS, as docs/make_screenshots.py does)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    target = os.environ.get("APPLIANCE_SCREENSHOTS")
    if target:
        Path(ROOT / target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ROOT / target / path.name)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("web")
    config = folder / "register.toml"
    config.write_text("[sync]\n" + "".join(f"{k} = {v}\n" for k, v in FAST_SYNC.items()))
    proc = RegisterProcess(folder / "data", config)
    proc.start()
    shop = Shop(proc, folder)
    try:
        yield shop
    finally:
        shop.api.close()
        proc.stop()


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def log_in(page: Any, url: str, name: str, secret: str, kind: str = "PIN") -> None:
    page.goto(f"{url}/login")
    page.locator("label.user-pick", has_text=name).click()
    page.fill("#secret", secret)
    page.get_by_role("button", name=f"Log in with {kind}").click()
    page.wait_for_url(re.compile(r"/$"))


UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, button, a[href]')]
  .filter((el) => el.type !== 'hidden' && !el.closest('dialog:not([open])'))
  .filter((el) => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                    || (el.textContent || '').trim()))
  .map((el) => el.outerHTML.slice(0, 80))"""


def check_screen(page: Any) -> None:
    """Usable at 1024×768 (nothing wider than the screen) and every control named."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"{page.url} is {width}px wide"
    assert page.evaluate(UNNAMED_CONTROLS) == []


def cart_names(page: Any) -> list[str]:
    return [n.strip() for n in page.locator("button.line .name").all_inner_texts()]


def test_first_start_sets_up_the_manager(shop: Shop, browser: Any) -> None:
    """A fresh register sends people to /setup; the printed code makes the manager."""
    page = new_page(browser)
    page.goto(shop.proc.url + "/")
    page.wait_for_url(re.compile(r"/setup$"))
    code_file = shop.proc.data_dir / "setup-code"
    assert code_file.stat().st_mode & 0o777 == 0o600
    assert (shop.proc.data_dir / "api-token").stat().st_mode & 0o777 == 0o600
    page.fill("#code", "WRONG-CODE-0000")
    page.fill("#name", "Mia Manager")
    page.fill("#username", "mia")
    page.fill("#password", "counter-top-42")
    page.get_by_role("button", name="Create manager and start").click()
    page.get_by_text("wrong setup code").wait_for()
    page.fill("#code", code_file.read_text().strip().lower())
    shop.shot(page, "setup")
    page.get_by_role("button", name="Create manager and start").click()
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_text("Mia Manager").wait_for()
    assert not code_file.exists()
    # The setup page is gone once a manager exists.
    page.goto(shop.proc.url + "/setup")
    page.wait_for_url(re.compile(r"/login"))
    page.context.close()


def test_scanned_sale_appears_live_is_paid_and_shows_in_admin(shop: Shop, browser: Any) -> None:
    api = shop.api
    shop.ok(api.put("/api/users/carla", json={"name": "Carla", "role": "cashier", "pin": "2468"}))
    shop.ok(api.post("/api/customers", json={"code": "4711", "name": "Erika Mustermann"}))
    shop.ok(api.post("/api/shifts", json={"float_minor": 10_000}))

    page = new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, shop.proc.url, "Carla", "2468")
    shop.shot(page, "sell-empty")
    check_screen(page)

    # The counter's scanner: a recorded USB wedge session, decoded by the real driver
    # code, each scan reaching the register as the scanner's scans do (no sale id).
    scans = decoded("us-enter.evemu")
    assert scans == ["4006381333931", "2100002012341", "CUST4711", "RCPTR1-000001"]
    shop.ok(api.post("/api/scan", json={"code": scans[0]}))
    page.locator("button.line", has_text="Ground coffee 250 g").wait_for()
    shop.ok(api.post("/api/scan", json={"code": scans[1]}))  # bananas, weighed label
    page.locator("button.line", has_text="Bananas (loose)").wait_for()
    shop.ok(api.post("/api/scan", json={"code": scans[2]}))
    page.get_by_text("Customer: Erika Mustermann").wait_for()
    # The last scan is a receipt this register has not issued yet: refused, and the
    # screen says so although the scan came from the scanner, not from the screen.
    refused = api.post("/api/scan", json={"code": scans[3]})
    assert refused.status_code == 404
    cue = page.locator("#cue")
    cue.get_by_text("Not found").wait_for()
    assert "bad" in (cue.get_attribute("class") or "")
    # A damaged label (wrong check digit) from the scanner: a misread.
    assert api.post("/api/scan", json={"code": "4006381333932"}).status_code == 422
    cue.get_by_text("Misread").wait_for()
    # A valid code that is not in the catalog, typed at the screen: "not found".
    page.fill("#scan", "12345670")
    page.keyboard.press("Enter")
    cue.get_by_text("Not found: 12345670").wait_for()
    page.fill("#scan", "4006381333932")
    page.keyboard.press("Enter")
    cue.get_by_text("Misread").wait_for()
    assert cart_names(page)[0].startswith("Ground coffee 250 g")
    assert len(cart_names(page)) == 2

    # The cashier adds a quick key and searches by name, with the keyboard.
    page.get_by_role("button", name=re.compile("^Shopping bag")).click()
    page.locator("button.line", has_text="Shopping bag").wait_for()
    page.fill("#scan", "chocol")
    page.locator("#search-results button.result", has_text="Dark chocolate").click()
    page.locator("button.line", has_text="Dark chocolate 100 g").wait_for()
    shop.shot(page, "sell-cart")

    sale = shop.ok(api.get("/api/sales", params={"status": "open"}))[-1]
    total = sale["totals"]["total"]
    assert page.locator("#cart-total").inner_text() == f"{total // 100}.{total % 100:02d}"

    page.keyboard.press("F2")  # pay from the keyboard
    dialog = page.locator("#pay-dialog")
    dialog.wait_for()
    page.fill("#tender-amount", "5.00")
    page.locator("#pay-card").click()  # split: part by card, through the terminal
    page.locator("#card-status", has_text="Card approved").wait_for(timeout=20_000)
    page.locator("#pay-tenders", has_text="Paid so far: 5.00").wait_for()
    shop.shot(page, "sell-pay")
    page.locator("#quick-cash button").nth(1).click()  # the next note up: change due
    receipt = page.locator("#receipt-dialog")
    receipt.get_by_text("Change due").wait_for()
    receipt.get_by_text("The receipt prints by itself").wait_for()
    shop.shot(page, "sell-change")
    done = shop.ok(api.get(f"/api/sales/{sale['id']}"))
    assert done["status"] == "completed"
    assert [t["kind"] for t in done["tenders"]] == ["card", "cash"]
    assert receipt.locator(".big-change strong").inner_text() == (
        f"{done['totals']['change'] // 100}.{done['totals']['change'] % 100:02d}"
    )
    page.get_by_role("button", name="Done").click()
    page.locator("li.empty").wait_for()
    assert errors == []  # no script error along the way (the page's CSP included)

    # The manager sees the sale in the admin panel.
    admin = new_page(browser)
    log_in(admin, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    admin.goto(shop.proc.url + "/admin/sales")
    row = admin.locator("#recent-sales tr", has_text=done["receipt_no"])
    row.wait_for()
    assert "Erika Mustermann" in row.inner_text()
    shop.shot(admin, "admin-sales")
    row.get_by_role("link", name=done["receipt_no"]).click()
    admin.get_by_role("heading", name=f"Sale {done['receipt_no']}").wait_for()
    assert admin.locator("h1").count() == 1
    # Its receipt went through the print queue to the (virtual) printer, and the
    # admin panel previews it as the printer prints it.
    wait_until(
        lambda: any(
            j["sale_id"] == done["id"] and j["status"] == "done"
            for j in shop.ok(api.get("/api/printer/jobs"))
        ),
        20,
        "the receipt was not printed",
    )
    admin.goto(shop.proc.url + "/admin/receipt-preview")
    assert done["receipt_no"] in admin.locator("#receipt-preview").inner_text()
    shop.shot(admin, "admin-receipt-preview")
    admin.goto(shop.proc.url + "/admin/shifts")
    assert "Tender card" in admin.locator("#x-report").inner_text()
    shop.shot(admin, "admin-shifts")
    admin.context.close()
    page.context.close()


def test_park_resume_and_refund_from_a_scanned_receipt(shop: Shop, browser: Any) -> None:
    api = shop.api
    page = new_page(browser)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.fill("#scan", "4001686301265")
    page.keyboard.press("Enter")
    page.locator("button.line", has_text="Whole milk 1 l").wait_for()
    page.get_by_role("button", name="Park", exact=True).click()
    page.fill("#park-name", "Table 4")
    page.locator("#park-ok").click()
    page.locator("li.empty").wait_for()
    page.get_by_role("button", name="Parked sales").click()
    page.locator("#parked-list button", has_text="Table 4").click()
    page.locator("button.line", has_text="Whole milk 1 l").wait_for()
    assert page.locator(".cart-head").inner_text().count("Table 4") == 1

    # A refund needs a supervisor: the screen asks for one and goes on when approved.
    shop.ok(api.put("/api/users/sam", json={"name": "Sam", "role": "supervisor", "pin": "1357"}))
    last = shop.ok(api.get("/api/sales", params={"status": "completed"}))[-1]
    shop.ok(api.post("/api/scan", json={"code": f"RCPT{last['receipt_no']}"}))
    refund = page.locator("#refund-dialog")
    refund.locator("#refund-form").wait_for()  # the scanned receipt opened the refund
    refund.locator('input[data-line="1"]').fill("1")
    for other in refund.locator("input[data-line]").all()[1:]:
        other.fill("0")
    page.locator("#refund-ok").click()
    approve = page.locator("#approve-dialog")
    approve.get_by_text("needs 'refund'").wait_for()
    page.fill("#approve-user", "sam")
    page.fill("#approve-secret", "1357")
    shop.shot(page, "sell-approval")
    page.locator("#approve-ok").click()
    page.locator("#receipt-dialog").get_by_text("Refund").first.wait_for()
    refunds = [s for s in shop.ok(api.get("/api/sales")) if s["kind"] == "refund"]
    assert len(refunds) == 1 and refunds[0]["status"] == "completed"
    assert refunds[0]["refund_of_receipt"] == last["receipt_no"]
    page.context.close()


def test_catalog_import_shows_every_bad_row(shop: Shop, browser: Any, tmp_path: Path) -> None:
    page = new_page(browser)
    log_in(page, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    page.goto(shop.proc.url + "/admin/catalog")
    bad = tmp_path / "catalog.csv"
    bad.write_text("sku,name,price_minor\nOK1,Fine,100\n,No sku,100\nX2,Bad price,1.99\n")
    page.set_input_files("#catalog-file", str(bad))
    page.get_by_role("button", name="Import").click()
    errors = page.locator(".import-errors li")
    errors.first.wait_for()
    assert errors.all_inner_texts() == [
        "upload.csv:3: sku: required, 1-64 printable characters without spaces",
        "upload.csv:4: price_minor: '1.99' is not an integer number of minor units (e.g. 199)",
    ]
    shop.shot(page, "admin-catalog-errors")
    paths = [a.get_attribute("href") or "" for a in page.locator("nav.side-nav a").all()]
    assert len(paths) == 10
    for path in paths:
        resp = page.goto(shop.proc.url + path)
        assert resp is not None and resp.status == 200, path
        assert page.locator("h1").count() == 1, path
        check_screen(page)
    page.goto(shop.proc.url + "/admin")
    shop.shot(page, "admin-status")
    page.context.close()


def printed(shop: Shop, text: str) -> list[str]:
    """The virtual printer's finished jobs (data/printer/*.txt) that contain ``text``."""
    jobs = sorted((shop.proc.data_dir / "printer").glob("*.txt"))
    return [p.name for p in jobs if text in p.read_text(encoding="utf-8")]


def test_settings_change_the_next_receipt_without_restart(shop: Shop, browser: Any) -> None:
    """The manager changes the receipt header in /admin; the next receipt the virtual
    printer prints carries it. A bad value is refused naming the field."""
    page = new_page(browser)
    log_in(page, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    page.goto(shop.proc.url + "/admin/settings")
    page.fill("#s-max-age", "0")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#action-result", has_text="payments.offline.max_age_hours").wait_for()
    page.fill("#s-max-age", "12")
    page.fill("#s-header", "Corner Shop Ltd\nMarket Street 5")
    page.fill("#s-footer", "Thanks, see you soon")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#action-result", has_text="Settings saved").wait_for()
    page.reload()
    assert page.locator("#s-header").input_value() == "Corner Shop Ltd\nMarket Street 5"
    page.locator("#settings-changed", has_text="store.receipt_header").wait_for()
    assert "mia" in page.locator("#settings-changed").inner_text()
    page.evaluate("() => window.scrollTo(0, 0)")
    shop.shot(page, "admin-settings")
    assert printed(shop, "Corner Shop Ltd") == []
    api = shop.api
    sale = shop.ok(api.post("/api/sales", json={}))
    shop.ok(api.post(f"/api/sales/{sale['id']}/lines", json={"code": "BAG"}))
    due = shop.ok(api.get(f"/api/sales/{sale['id']}"))["totals"]["total"]
    shop.ok(
        api.post(f"/api/sales/{sale['id']}/tenders", json={"kind": "cash", "amount_minor": due})
    )
    wait_until(lambda: printed(shop, "Corner Shop Ltd"), 20, "no receipt with the new header")
    job = printed(shop, "Corner Shop Ltd")
    assert len(job) == 1
    text = (shop.proc.data_dir / "printer" / job[0]).read_text(encoding="utf-8")
    assert "Market Street 5" in text and "Thanks, see you soon" in text
    page.context.close()


def test_no_receipt_prints_nothing_and_print_is_once_per_request(shop: Shop, browser: Any) -> None:
    """ "No receipt" at the counter queues nothing; asking for the receipt afterwards
    prints it once however often asked; "Print a copy" adds exactly one COPY."""
    api = shop.api
    for left in shop.ok(api.get("/api/sales", params={"status": "open"})):
        shop.ok(api.post(f"/api/sales/{left['id']}/void", json={"reason": "test"}))
    page = new_page(browser)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.fill("#scan", "4001686301265")
    page.keyboard.press("Enter")
    page.locator("button.line", has_text="Whole milk 1 l").wait_for()
    page.locator("#cart-total", has_text="1.29").wait_for()
    page.keyboard.press("F2")
    page.locator("#no-receipt").check()
    page.locator("#quick-cash button").first.click()
    receipt = page.locator("#receipt-dialog")
    receipt.locator("#receipt-none").wait_for()
    sale_id = receipt.locator("#receipt-doc").get_attribute("data-sale-id")
    done = shop.ok(api.get(f"/api/sales/{sale_id}"))
    assert done["status"] == "completed"
    jobs = lambda: [j for j in shop.ok(api.get("/api/printer/jobs")) if j["sale_id"] == sale_id]  # noqa: E731
    assert [(j["kind"], j["status"]) for j in jobs()] == [("receipt", "skipped")]
    # A copy of another receipt goes through the queue meanwhile: the worker runs, and
    # still nothing of this sale is printed.
    shop.ok(api.post("/api/printer/reports/x"))
    wait_until(
        lambda: all(
            j["status"] in ("done", "skipped") for j in shop.ok(api.get("/api/printer/jobs"))
        ),
        20,
        "the X report was not printed",
    )
    assert printed(shop, done["receipt_no"]) == []
    # The customer wants it after all: one press (the button locks), one repeat request.
    receipt.get_by_role("button", name="Print receipt").click()
    receipt.locator("#receipt-printing").wait_for()
    shop.ok(api.put(f"/api/printer/receipts/{sale_id}", json={"print": True}))
    wait_until(lambda: printed(shop, done["receipt_no"]), 20, "the receipt was not printed")
    assert [(j["kind"], j["status"]) for j in jobs()] == [("receipt", "done")]
    # Too late for "no receipt" once it is printed: refused, nothing changes.
    late = api.put(f"/api/printer/receipts/{sale_id}", json={"print": False})
    assert late.status_code == 409
    receipt.get_by_role("button", name="Print a copy").click()
    receipt.wait_for(state="hidden")
    wait_until(lambda: len(printed(shop, done["receipt_no"])) == 2, 20, "no copy printed")
    assert len(printed(shop, "COPY")) >= 1
    # A copy asked for twice with one request id (a retry after a lost answer): one copy.
    first = shop.ok(api.post("/api/printer/reprint-last", json={"request_id": "press-0001"}))
    again = shop.ok(api.post("/api/printer/reprint-last", json={"request_id": "press-0001"}))
    assert first["id"] == again["id"]
    wait_until(lambda: len(printed(shop, done["receipt_no"])) == 3, 20, "no second copy")
    page.wait_for_timeout(500)
    assert len(printed(shop, done["receipt_no"])) == 3
    page.context.close()


def test_supervisor_approval_is_recorded_with_the_price_change(shop: Shop, browser: Any) -> None:
    """A cashier's price override approved by a supervisor: the op names both, and the
    sale's page in /admin shows who approved it."""
    import json
    import sqlite3

    page = new_page(browser)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.fill("#scan", "BAG")
    page.keyboard.press("Enter")
    page.locator("button.line", has_text="Shopping bag").click()
    page.fill("#line-price", "0.10")
    page.fill("#line-reason", "damaged")
    page.locator("#line-price-ok").click()
    page.locator("#approve-dialog").get_by_text("needs 'discount'").wait_for()
    page.fill("#approve-user", "sam")
    page.fill("#approve-secret", "1357")
    page.locator("#approve-ok").click()
    page.locator("#cart-total", has_text="0.10").wait_for()
    sale_id = page.locator("#cart-doc").get_attribute("data-sale-id")
    with sqlite3.connect(shop.proc.data_dir / "register.db") as db:
        rows = db.execute(
            "SELECT payload FROM ops WHERE kind = 'sale.line_price' AND sale_id = ?", (sale_id,)
        ).fetchall()
    payload = json.loads(rows[-1][0])
    assert (payload["by"], payload["approved_by"], payload["reason"]) == ("carla", "sam", "damaged")
    page.context.close()
    admin = new_page(browser)
    log_in(admin, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    admin.goto(f"{shop.proc.url}/admin/sales/{sale_id}")
    note = admin.locator(".price-note").first
    assert "by carla, approved by sam" in note.inner_text()
    admin.context.close()
    shop.ok(shop.api.post(f"/api/sales/{sale_id}/void", json={"reason": "test over"}))


def test_new_customer_and_new_product_at_the_counter(shop: Shop, browser: Any) -> None:
    """A cashier creates a customer (allowed) and a product (needs 'catalog': a
    manager approves) without leaving the sale; an SKU that exists is refused."""
    page = new_page(browser)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.get_by_role("button", name="Customer", exact=True).click()
    page.locator("#new-customer summary").click()
    page.fill("#nc-code", "5150")
    page.fill("#nc-name", "Jana Novak")
    page.locator("#nc-ok").click()
    page.get_by_text("Customer: Jana Novak").wait_for()
    assert shop.ok(shop.api.get("/api/customers/5150"))["name"] == "Jana Novak"

    page.get_by_role("button", name="New product").click()
    page.fill("#np-sku", "BAG")
    page.fill("#np-name", "Another bag")
    page.fill("#np-price", "0.30")
    page.locator("#np-ok").click()
    page.locator("#approve-dialog").get_by_text("needs 'catalog'").wait_for()
    page.fill("#approve-user", "mia")
    page.fill("#approve-secret", "counter-top-42")
    page.locator("#approve-ok").click()
    page.locator("#product-dialog").get_by_text("exists already").wait_for()
    page.fill("#np-sku", "JAM-1")
    page.fill("#np-name", "Apricot jam 340 g")
    page.fill("#np-price", "3.49")
    page.fill("#np-barcode", "4000000000006")
    shop.shot(page, "sell-new-product")
    page.locator("#np-ok").click()  # the approval still holds (web.approval_seconds)
    page.locator("button.line", has_text="Apricot jam 340 g").wait_for()
    product = shop.ok(shop.api.get("/api/products/JAM-1"))
    assert (product["price"], product["barcodes"]) == (349, ["4000000000006"])
    assert shop.ok(shop.api.get("/api/products/BAG"))["name"] == "Shopping bag"
    sale_id = page.locator("#cart-doc").get_attribute("data-sale-id")
    shop.ok(shop.api.post(f"/api/sales/{sale_id}/void", json={"reason": "test over"}))
    page.context.close()


def test_peripherals_redetect_shows_what_it_found(shop: Shop, browser: Any) -> None:
    """Re-detect reopens the printer's link and the terminal's, restarts the scanners,
    and the page shows the outcome; the printer still prints afterwards."""
    page = new_page(browser)
    log_in(page, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    page.goto(shop.proc.url + "/admin/peripherals")
    assert page.locator("#redetect-result").count() == 0
    page.get_by_role("button", name="Re-detect devices").click()
    result = page.locator("#redetect-result")
    result.wait_for(timeout=20_000)
    text = result.inner_text()
    assert "scanners none configured" in text
    assert "ready" in text and "terminal connected (answered)" in text, text
    shop.shot(page, "admin-peripherals")
    before = len(printed(shop, "X REPORT"))
    shop.ok(shop.api.post("/api/printer/reports/x"))
    wait_until(lambda: len(printed(shop, "X REPORT")) == before + 1, 20, "no print after re-detect")
    page.context.close()


def test_manager_runs_the_shift_and_adds_a_cashier(shop: Shop, browser: Any) -> None:
    page = new_page(browser)
    log_in(page, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
    page.goto(shop.proc.url + "/admin/shifts")
    page.select_option("#cash-kind", "in")
    page.fill("#cash-amount", "10.50")
    page.fill("#cash-reason", "change from the bank")
    page.get_by_role("button", name="Record").click()
    page.locator("#x-report", has_text="Cash in").wait_for()
    page.locator("#x-report", has_text="10.50").wait_for()
    expected = shop.ok(shop.api.get("/api/reports/x"))["expected_cash"]
    page.fill("#counted", "12x")
    page.get_by_role("button", name="Close shift and show Z report").click()
    page.locator("#action-result", has_text="enter an amount").wait_for()
    page.fill("#counted", f"{(expected + 100) // 100}.{(expected + 100) % 100:02d}")
    page.get_by_role("button", name="Close shift and show Z report").click()
    page.wait_for_url(re.compile(r"/admin/shifts/\d+$"))
    z_text = page.locator("#z-report").inner_text()
    assert "Over/short" in z_text and "1.00" in z_text.split("Over/short")[1]
    shop.shot(page, "admin-z-report")

    page.goto(shop.proc.url + "/admin/users")
    page.fill("#u-username", "dora")
    page.fill("#u-name", "Dora")
    page.select_option("#u-role", "cashier")
    page.fill("#u-pin", "12")
    page.get_by_role("button", name="Save user").click()
    page.locator("#action-result", has_text="4 to 8 digits").wait_for()
    page.fill("#u-pin", "9753")
    page.get_by_role("button", name="Save user").click()
    page.locator("#users tr", has_text="dora").wait_for()
    page.context.close()
    cashier = new_page(browser)
    log_in(cashier, shop.proc.url, "Dora", "9753")
    cashier.locator(".who", has_text="Dora").wait_for()
    assert cashier.get_by_role("link", name="Admin").count() == 0
    cashier.context.close()


def test_park_on_one_register_and_resume_on_another(browser: Any, tmp_path: Path) -> None:
    """Two registers in LAN sync on loopback: a tab parked at one is paid at the other;
    the cashier's account came over with the op log too."""
    from appliance.lan.crypto import new_secret

    secret, ports = new_secret(), [free_port(), free_port()]
    regs = []
    for i, rid in enumerate(("R1", "R2")):
        config = tmp_path / f"{rid}.toml"
        config.write_text(
            f'[register]\nid = "{rid}"\nname = "Till {i + 1}"\n[sync]\nenabled = false\n'
            f'[lan]\nenabled = true\nsecret = "{secret}"\nbind = "127.0.0.1"\n'
            f'port = {ports[i]}\ndiscovery = false\npeers = ["127.0.0.1:{ports[1 - i]}"]\n'
        )
        (tmp_path / rid).mkdir()
        regs.append(RegisterProcess(tmp_path / rid / "data", config))
    pages: list[Any] = []
    try:
        for reg in regs:
            reg.start()
        first, second = (reg.client() for reg in regs)
        boss = {"name": "Mia", "role": "manager", "password": "counter-top-42"}
        first.put("/api/users/mia", json=boss).raise_for_status()
        first.put(
            "/api/users/carla", json={"name": "Carla", "role": "cashier", "pin": "2468"}
        ).raise_for_status()
        second.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
        wait_until(
            lambda: any(u["username"] == "carla" for u in second.get("/api/users").json()),
            20,
            "the account did not reach the other register",
        )
        at_one = new_page(browser)
        pages.append(at_one)
        log_in(at_one, regs[0].url, "Carla", "2468")
        at_one.fill("#scan", "4001686301265")
        at_one.keyboard.press("Enter")
        at_one.locator("button.line", has_text="Whole milk 1 l").wait_for()
        at_one.get_by_role("button", name="Park", exact=True).click()
        at_one.fill("#park-name", "Table 9")
        at_one.locator("#park-ok").click()
        at_one.locator("li.empty").wait_for()
        parked = lambda: [s for s in second.get("/api/sales", params={"status": "parked"}).json()]  # noqa: E731
        wait_until(lambda: any(s["name"] == "Table 9" for s in parked()), 20, "tab not synced")
        at_two = new_page(browser)
        pages.append(at_two)
        log_in(at_two, regs[1].url, "Carla", "2468")
        at_two.get_by_role("button", name="Parked sales").click()
        at_two.locator("#parked-list button", has_text="Table 9").click()
        at_two.locator("button.line", has_text="Whole milk 1 l").wait_for()
        shop_shot = at_two.locator(".cart-head").inner_text()
        assert "Table 9" in shop_shot
        at_two.keyboard.press("F2")
        at_two.locator("#quick-cash button").first.click()  # exact cash
        at_two.locator("#receipt-dialog").get_by_text("Sale complete").wait_for()
        done = [s for s in second.get("/api/sales", params={"status": "completed"}).json()]
        assert [s["name"] for s in done] == ["Table 9"]
        assert done[0]["receipt_no"].startswith("R2-")
        admin = new_page(browser)
        pages.append(admin)
        log_in(admin, regs[0].url, "Mia", "counter-top-42", kind="password")
        admin.goto(regs[0].url + "/admin/registers")
        row = admin.locator("#lan-registers tr", has_text="R2")
        row.wait_for()
        assert "Till 2" in row.inner_text()
        # A tab parked at Till 2, then Till 2 goes away: Till 1's lists say so and mark
        # the tab as held by an unreachable register.
        at_two.get_by_role("button", name="Done").click()
        at_two.fill("#scan", "BAG")
        at_two.keyboard.press("Enter")
        at_two.locator("button.line", has_text="Shopping bag").wait_for()
        at_two.get_by_role("button", name="Park", exact=True).click()
        at_two.fill("#park-name", "Table 11")
        at_two.locator("#park-ok").click()
        at_two.locator("li.empty").wait_for()
        wait_until(
            lambda: any(
                s["name"] == "Table 11"
                for s in first.get("/api/sales", params={"status": "parked"}).json()
            ),
            20,
            "tab not synced to Till 1",
        )
        regs[1].stop()
        wait_until(
            lambda: any(
                r["register_id"] == "R2" and r["status"] == "disconnected"
                for r in first.get("/api/lan/registers").json()["registers"]
            ),
            20,
            "Till 1 did not notice Till 2 going away",
        )
        admin.goto(regs[0].url + "/admin/sales")
        admin.locator('[data-unreachable="R2"]').wait_for()
        away = admin.locator("#saved-sales tr", has_text="Table 11")
        assert "unreachable" in away.inner_text()
        at_one.get_by_role("button", name="Parked sales").click()
        at_one.locator('#parked-list [data-unreachable="R2"]').wait_for()
        tab = at_one.locator("#parked-list button", has_text="Table 11")
        assert "unreachable" in tab.inner_text()
        shot(admin, tmp_path, "admin-saved-sales")
        shot(at_one, tmp_path, "sell-parked-unreachable")
        first.close()
        second.close()
    finally:
        for page in pages:
            page.context.close()
        for reg in regs:
            reg.stop()


def test_offline_banner_when_the_back_office_is_unreachable(
    shop: Shop, browser: Any, tmp_path: Path
) -> None:
    """Paired with a back office through a proxy; the link drops: the banner says so
    and counts what waits, selling goes on; the link returns: the banner goes."""
    from appliance.backoffice.storage import open_database

    db_url = f"sqlite:///{tmp_path / 'bo.db'}"
    seed(db_url)
    db = open_database(db_url)
    add_stores(db, ("s1",))
    db.close()
    office = BackOfficeProcess(db_url, tmp_path)
    office.start()
    proxy = ProxyProcess(office.port)
    page = new_page(browser)
    try:
        code = Admin(office.url).pairing_code("s1")
        shop.ok(shop.api.post("/api/sync/pair", json={"url": proxy.url, "code": code}))
        log_in(page, shop.proc.url, "Carla", "2468")
        page.locator("#link-state", has_text="Connected").wait_for()
        assert page.locator('[data-banner="offline"]').count() == 0
        proxy.command("down")
        banner = page.locator('[data-banner="offline"]')
        banner.wait_for(timeout=20_000)
        page.fill("#scan", "BAG")  # selling goes on offline
        page.keyboard.press("Enter")
        page.locator("button.line", has_text="Shopping bag").wait_for()
        page.reload()
        assert "change(s) wait to be sent" in banner.inner_text()
        shop.shot(page, "sell-offline-backoffice")
        proxy.command("up")
        banner.wait_for(state="detached", timeout=20_000)
        wait_until(
            lambda: shop.ok(shop.api.get("/api/sync/status"))["pending"] == 0, 20, "no drain"
        )
        admin = new_page(browser)
        log_in(admin, shop.proc.url, "Mia Manager", "counter-top-42", kind="password")
        admin.goto(shop.proc.url + "/admin")
        assert "online" in admin.locator("#sync-state").inner_text()
        assert "0 change(s)" in admin.locator("#sync-pending").inner_text()
        admin.locator("#saved-sales-sync", has_text="on").wait_for()
        admin.locator("#reset-warning").wait_for()
        shop.shot(admin, "admin-status")
        admin.context.close()
    finally:
        page.context.close()
        proxy.stop()
        office.stop()


def test_offline_banner_when_the_register_goes_away(shop: Shop, browser: Any) -> None:
    page = new_page(browser)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.locator("#link-state", has_text="Connected").wait_for()
    assert page.locator("#offline-banner").is_hidden()
    shop.proc.kill()
    page.locator("#offline-banner").wait_for(state="visible")
    assert page.locator("#link-state").inner_text() == "Offline"
    shop.shot(page, "sell-offline")
    # Back after a restart: the session ended with the process, so the screen asks
    # for the PIN again and then shows no banner.
    shop.proc.start()
    page.wait_for_url(re.compile(r"/login"), timeout=20_000)
    log_in(page, shop.proc.url, "Carla", "2468")
    page.locator("#link-state", has_text="Connected").wait_for()
    assert page.locator("#offline-banner").is_hidden()
    page.context.close()
