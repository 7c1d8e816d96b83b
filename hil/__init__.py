"""Hardware-in-the-loop rig: recordings, virtual devices and the scenario runner."""
