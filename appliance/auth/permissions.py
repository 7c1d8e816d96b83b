"""Roles, their permissions, and the permission each route of the app needs.

One table for the whole app, so what a cashier may do is read in one place. A route
not in the table needs ``view`` to read (GET) and ``admin`` to change anything:
a feature's new route is closed to cashiers until it is listed here.
"""

from __future__ import annotations

ROLES = ("cashier", "supervisor", "manager")

# view: read the register's data; sell: ring up and take payment; discount: price
# overrides and discounts; void: discard a sale; refund: refunds; shift: open/close
# shifts, cash in/out, X/Z; catalog: products and imports; users: accounts;
# admin: the admin panel and every other change.
PERMISSIONS = ("view", "sell", "discount", "void", "refund", "shift", "catalog", "users", "admin")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "cashier": frozenset({"view", "sell"}),
    "supervisor": frozenset({"view", "sell", "discount", "void", "refund", "shift"}),
    "manager": frozenset(PERMISSIONS),
}
MACHINE_PERMISSIONS = frozenset(PERMISSIONS)

PUBLIC = "public"  # no principal needed (the route checks what it must itself)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# (method, route path) -> permission. Paths are the app's route templates.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/setup"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/setup"): PUBLIC,
    ("POST", "/auth/logout"): "view",
    ("POST", "/auth/approve"): "view",
    # selling
    ("POST", "/api/sales"): "sell",
    ("POST", "/api/sales/{sale_id}/lines"): "sell",
    ("POST", "/api/scan"): "sell",
    ("PATCH", "/api/sales/{sale_id}/lines/{line_no}"): "sell",
    ("DELETE", "/api/sales/{sale_id}/lines/{line_no}"): "sell",
    ("POST", "/api/sales/{sale_id}/customer"): "sell",
    ("POST", "/api/sales/{sale_id}/park"): "sell",
    ("POST", "/api/sales/{sale_id}/resume"): "sell",
    ("POST", "/api/sales/{sale_id}/tenders"): "sell",
    ("POST", "/api/sales/{sale_id}/complete"): "sell",
    ("POST", "/api/customers"): "sell",  # new customers at the counter, also offline
    ("POST", "/api/sales/{sale_id}/lines/{line_no}/price"): "discount",
    ("POST", "/api/sales/{sale_id}/lines/{line_no}/discount"): "discount",
    ("POST", "/api/sales/{sale_id}/discount"): "discount",
    ("POST", "/api/sales/{sale_id}/void"): "void",
    ("POST", "/api/refunds"): "refund",
    ("POST", "/api/refunds/{refund_id}/lines"): "refund",
    ("POST", "/api/refunds/{refund_id}/complete"): "refund",
    # shifts and reports
    ("POST", "/api/shifts"): "shift",
    ("POST", "/api/shifts/current/cash"): "shift",
    ("POST", "/api/shifts/current/close"): "shift",
    ("GET", "/api/reports/x"): "shift",
    ("GET", "/api/reports/z"): "shift",
    # receipt printer and drawer (appliance/printing)
    ("POST", "/api/printer/status/refresh"): "sell",
    ("POST", "/api/printer/jobs/{job_id}/retry"): "sell",
    ("POST", "/api/printer/reprint-last"): "sell",
    ("PUT", "/api/printer/receipts/{sale_id}"): "sell",  # "no receipt", or the receipt after all
    ("POST", "/api/printer/drawer"): "shift",  # a "no sale" drawer opening
    ("POST", "/api/printer/reports/x"): "shift",
    ("POST", "/api/printer/reports/z"): "shift",
    # card payments (appliance/payments)
    ("POST", "/api/sales/{sale_id}/payments"): "sell",
    ("POST", "/api/payments/{payment_id}/abort"): "sell",
    ("POST", "/api/payments/{payment_id}/resolve"): "sell",
    ("POST", "/api/payments/{payment_id}/reverse"): "refund",
    ("POST", "/api/refunds/{refund_id}/card"): "refund",
    ("POST", "/api/payments/end-of-day"): "shift",
    # back office sync (appliance/sync): the banner is the counter's, the rest admin
    ("POST", "/api/sync/banner/dismiss"): "sell",
    ("GET", "/api/sync/errored/download"): "admin",
    ("GET", "/api/sync/export"): "admin",
    # saved sales across the LAN (appliance/lan)
    ("POST", "/api/lan/sales/{sale_id}/resume"): "sell",
    ("POST", "/api/lan/sales/{sale_id}/rename"): "sell",
    ("POST", "/api/lan/sales/{sale_id}/transfer"): "sell",
    ("POST", "/api/lan/sales/{sale_id}/merge"): "sell",
    ("POST", "/api/lan/sales/{sale_id}/split"): "sell",
    ("POST", "/api/lan/sales/{sale_id}/checkout"): "sell",
    ("DELETE", "/api/lan/sales/{sale_id}/checkout"): "sell",
    # catalog and users
    ("PUT", "/api/products/{sku}"): "catalog",
    ("POST", "/api/catalog/import"): "catalog",
    ("GET", "/api/users"): "users",
    ("PUT", "/api/users/{username}"): "users",
    ("POST", "/api/users/{username}/unlock"): "users",
}


def route_permission(method: str, path: str) -> str:
    """The permission a request needs; ``admin`` pages always need ``admin``."""
    found = ROUTES.get((method, path))
    if found is None and method == "HEAD":
        found = ROUTES.get(("GET", path))
    if found is not None:
        return found
    if path == "/admin" or path.startswith("/admin/"):
        return "admin"
    return "view" if method in ("GET", "HEAD") else "admin"
