"""The virtual receipt printer (`hil printer`): ESC/POS over TCP, a pty or in-process."""
