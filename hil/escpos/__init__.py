"""The virtual printer's reading side: ESC/POS bytes → items → plain text or PNG."""
