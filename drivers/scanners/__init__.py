"""Barcode scanner drivers: keyboard wedge (evdev), serial (RS-232, USB-CDC) and BLE.

Every driver turns device input into ``ScanEvent``s that say which scanner sent
them; ``appliance.scan.apply_scan`` turns a scan into a sale line.
"""
