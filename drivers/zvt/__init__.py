"""ZVT (the German register–terminal protocol) on the register side.

Layers, bottom up: ``apdu`` (CLASS INSTR LEN data), ``framing`` (serial DLE/CRC frames),
``bmp``/``tlv``/``text`` (field codecs), ``messages`` (commands and their replies),
``transport`` (TCP and serial links), ``client`` (the async ZvtClient).
"""
