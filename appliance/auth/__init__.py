"""Who may do what on the register: users, secrets, sessions, machine tokens, the guard.

- ``users``: manager/supervisor/cashier accounts, kept as ``user.upsert`` ops in the op
  log so they replicate like everything else (``upsert_user`` is the entry point for
  back office sync);
- ``passwords``: argon2id hashes of passwords and PINs;
- ``permissions``: roles → permissions, and the permission each route needs;
- ``sessions``: browser sessions (HttpOnly, SameSite=Strict cookie, CSRF token);
- ``lockout``: lock-out after repeated failures (local, not replicated);
- ``tokens``: the machine token in the data folder and the one-time setup code;
- ``guard``: the ASGI middleware that lets a request through only with the right role;
- ``routes``: log in/out, approval, first-manager setup, user management.
"""
