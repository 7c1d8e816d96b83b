"""A bleak backend on the bumble host stack: BLE without BlueZ.

bleak has no bumble backend, but ``BleakScanner``/``BleakClient`` take a ``backend=``
class. :class:`BumbleScanner` and :class:`BumbleClient` implement bleak's backend
interfaces on a bumble ``Device`` (the host side) driving a controller over any
bumble HCI transport: ``tcp-client:127.0.0.1:9001`` (a controller served over TCP:
the virtual link of the HIL rig, `python -m bumble.apps.controllers`, or a bridge to
real hardware), ``usb:0`` (a USB Bluetooth dongle), ``serial:/dev/ttyUSB0`` …

So the scanner driver runs the same bleak calls whether it sits on BlueZ or on
bumble, and the tests run it against a real BLE peripheral (a bumble device serving
the Nordic UART Service) over a real HCI link.

Only what a scanner needs is implemented: scanning, connecting, GATT discovery,
notifications, reads and writes of characteristics. Pairing and descriptors are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from drivers.scanners.ble import BleTransport

log = logging.getLogger(__name__)

_PROPERTIES = {
    0x01: "broadcast", 0x02: "read", 0x04: "write-without-response", 0x08: "write",
    0x10: "notify", 0x20: "indicate", 0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}  # fmt: skip


def _uuid(bumble_uuid: Any) -> str:
    return normalize_uuid_str(bumble_uuid.to_hex_str("-"))


class BumbleCentral:
    """One bumble host on one HCI transport, shared by every scanner that names it
    (a controller serves one host). Opened on first use, reopened after the HCI
    transport is lost, closed when its last user is done."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.users = 0
        self._device: Any = None
        self._transport: Any = None
        self._lock = asyncio.Lock()
        self._scanning = 0

    async def device(self) -> Any:
        from bumble.device import Device
        from bumble.hci import Address
        from bumble.transport import open_transport

        async with self._lock:
            if self._transport is not None and self._transport.source.terminated.done():
                log.warning("bumble: HCI transport %s lost; reopening", self.spec)
                await self._close()
            if self._device is None:
                transport = await open_transport(self.spec)
                try:
                    device = Device.with_hci(
                        "register", Address.generate_static_address(), transport.source,
                        transport.sink,
                    )  # fmt: skip
                    await asyncio.wait_for(device.power_on(), 10)
                except BaseException:
                    await transport.close()
                    raise
                self._device, self._transport = device, transport
            return self._device

    def terminated(self) -> asyncio.Future[None]:
        """Done when the HCI transport is lost."""
        return self._transport.source.terminated

    async def start_scanning(self) -> Any:
        device = await self.device()
        self._scanning += 1
        if self._scanning == 1:
            await device.start_scanning(active=True, filter_duplicates=False)
        return device

    async def stop_scanning(self) -> None:
        self._scanning = max(0, self._scanning - 1)
        if self._scanning == 0 and self._device is not None:
            with contextlib.suppress(Exception):
                await self._device.stop_scanning()

    async def find_address(self, address: str, timeout: float) -> Any:
        """The bumble Address (with its type) of a device advertising as ``address``."""
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_advertisement(adv: Any) -> None:
            if adv.address.to_string(False).upper() == address.upper() and not found.done():
                found.set_result(adv.address)

        device = await self.start_scanning()
        device.on("advertisement", on_advertisement)
        try:
            return await asyncio.wait_for(found, timeout)
        except TimeoutError:
            raise BleakError(f"device {address} not found (not advertising)") from None
        finally:
            device.remove_listener("advertisement", on_advertisement)
            await self.stop_scanning()

    async def _close(self) -> None:
        transport, self._device, self._transport = self._transport, None, None
        self._scanning = 0
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close()

    async def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            for key in [k for k, v in _CENTRALS.items() if v is self]:
                del _CENTRALS[key]
            async with self._lock:
                await self._close()


_CENTRALS: dict[tuple[int, str], BumbleCentral] = {}  # by (event loop, spec)


def bumble_transport(spec: str) -> BleTransport:
    """The driver's transport for a bumble HCI transport spec (one central per spec)."""
    key = (id(asyncio.get_running_loop()), spec)
    central = _CENTRALS.get(key)
    if central is None:
        central = _CENTRALS[key] = BumbleCentral(spec)
    central.users += 1
    return BleTransport(
        f"bumble:{spec}",
        {"backend": BumbleClient, "central": central},
        {"backend": BumbleScanner, "central": central},
        close=central.release,
    )


class BumbleScanner(BaseBleakScanner):
    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        central: BumbleCentral,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = central
        self._device: Any = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._device = await self._central.start_scanning()
        self._device.on("advertisement", self._on_advertisement)

    async def stop(self) -> None:
        if self._device is not None:
            self._device.remove_listener("advertisement", self._on_advertisement)
            self._device = None
            await self._central.stop_scanning()

    def _on_advertisement(self, adv: Any) -> None:
        from bumble.core import AdvertisingData as AD

        def get(kind: int) -> Any:
            return adv.data.get(kind)

        name = get(AD.COMPLETE_LOCAL_NAME) or get(AD.SHORTENED_LOCAL_NAME)
        uuids = [
            _uuid(u)
            for kind in (AD.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                         AD.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                         AD.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                         AD.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
            for u in (get(kind) or [])
        ]  # fmt: skip
        if not self.is_allowed_uuid(uuids):
            return
        data = AdvertisementData(
            local_name=name if isinstance(name, str) else None,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=get(AD.TX_POWER_LEVEL),
            rssi=adv.rssi,
            platform_data=(adv,),
        )
        address = adv.address.to_string(False)
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    def __init__(
        self, address_or_ble_device: BLEDevice | str, *, central: BumbleCentral, **kwargs: Any
    ) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        self._central = central
        self._target = (
            address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._connection: Any = None
        self._peer: Any = None
        self._closing = False

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return int(self._connection.att_mtu) if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        from bumble.device import Peer

        device = await self._central.device()
        address = self._target or await self._central.find_address(self.address, self._timeout)
        connection = await device.connect(address, timeout=self._timeout)
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        # The HCI transport itself can go (a TCP bridge closed, a dongle pulled): no
        # disconnection event comes then, so that ends the link too.
        self._central.terminated().add_done_callback(
            lambda _: self._on_disconnection(0) if self._connection is connection else None
        )
        try:
            peer = Peer(connection)
            await asyncio.wait_for(peer.discover_services(), self._timeout)
            await asyncio.wait_for(peer.discover_characteristics(), self._timeout)
        except BaseException:
            await self.disconnect()
            raise
        self._peer = peer
        self.services = self._collection(peer)

    def _collection(self, peer: Any) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                properties = [name for bit, name in _PROPERTIES.items() if char.properties & bit]
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        char, char.handle, _uuid(char.uuid), properties,  # type: ignore[arg-type]
                        lambda: self.mtu_size - 3, bleak_service,
                    )
                )  # fmt: skip
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection, self._closing = self._connection, True
        try:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.disconnect(), self._timeout)
        finally:
            self._connection = None
            self._closing = False

    def _proxy(self, characteristic: BleakGATTCharacteristic) -> Any:
        if self._peer is None:
            raise BleakError("not connected")
        return characteristic.obj

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy = self._proxy(characteristic)
        listener: Callable[[bytes], None] = lambda value: callback(bytearray(value))  # noqa: E731
        await self._peer.subscribe(proxy, listener)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        await self._peer.unsubscribe(self._proxy(characteristic))

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._proxy(characteristic).read_value())

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        await self._proxy(characteristic).write_value(bytes(data), with_response=response)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        raise BleakError("descriptors are not supported by the bumble transport")

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise BleakError("descriptors are not supported by the bumble transport")

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the bumble transport")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the bumble transport")
