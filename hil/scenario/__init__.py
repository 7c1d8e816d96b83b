"""HIL scenarios: one file format, one runner, several tiers (in-process, virtual, qemu, bench)."""
