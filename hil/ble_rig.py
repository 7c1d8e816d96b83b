"""Virtual BLE for the HIL rig: a simulated radio, controllers on HCI over TCP, and a
BLE barcode scanner (a real GATT peripheral serving the Nordic UART Service).

bumble's ``LocalLink`` plays the radio. Each host that should reach it as a real
Bluetooth user — the register's BLE driver — gets a controller served over HCI on a
loopback TCP port (``tcp-client:127.0.0.1:PORT`` is what its profile names, as it
would name a controller bridged from real hardware). The virtual scanner is a bumble
device on the same link: it advertises its name, serves NUS, and sends each scan
as notifications chunked to the ATT MTU, as BLE scanners do. It can also walk out of
range (drop the link) and come back, to exercise reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from drivers.scanners.ble import NUS_RX, NUS_SERVICE, NUS_TX

ADVERTISING_INTERVAL_MS = 20  # the shortest the spec allows: connects in tens of ms


class VirtualBleLink:
    """bumble's simulated radio with controllers reachable over HCI on loopback TCP."""

    def __init__(self) -> None:
        from bumble.link import LocalLink

        self.link = LocalLink()
        self._transports: list[Any] = []

    async def serve_controller(self, name: str = "register") -> str:
        """A controller on the link served over TCP; returns the host's transport spec."""
        from bumble.controller import Controller
        from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

        # IPPROTO_TCP given explicitly, so asyncio sets TCP_NODELAY on the accepted
        # connection (it checks the proto); with Nagle on, each HCI packet waits ~40 ms.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        transport = await open_tcp_server_transport_with_socket(sock)
        self._transports.append(transport)
        Controller(name, host_source=transport.source, host_sink=transport.sink, link=self.link)
        return f"tcp-client:127.0.0.1:{port}"

    def device(self, name: str, address: str) -> Any:
        """An in-process bumble device (host + controller) on the link."""
        from bumble.controller import Controller
        from bumble.device import Device
        from bumble.hci import Address
        from bumble.host import Host
        from bumble.transport.common import AsyncPipeSink

        controller = Controller(name, link=self.link, public_address=address)
        return Device(
            name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller))
        )

    async def close(self) -> None:
        """Stop serving the controllers, and drop the hosts' HCI links to them."""
        for transport in self._transports:
            with contextlib.suppress(Exception):
                transport.server.close()
                connection = transport.sink.transport  # the accepted host connection
                if connection is not None:
                    connection.close()
                await transport.close()
        self._transports.clear()


class VirtualBleScanner:
    """A BLE barcode scanner in BLE-serial mode: NUS (or another notify characteristic)."""

    def __init__(
        self,
        link: VirtualBleLink,
        name: str = "HIL BLE Scanner",
        address: str = "F0:5C:A0:00:00:01",
        service: str = NUS_SERVICE,
        characteristic: str = NUS_TX,
    ) -> None:
        from bumble.core import AdvertisingData
        from bumble.gatt import Characteristic, Service

        self.name = name
        self.address = address
        self.device = link.device(name, address)
        props = Characteristic.Properties
        self.tx = Characteristic(characteristic, props.NOTIFY, Characteristic.READABLE, b"")
        rx = Characteristic(
            NUS_RX, props.WRITE | props.WRITE_WITHOUT_RESPONSE, Characteristic.WRITEABLE, b""
        )
        self.device.add_service(Service(service, [rx, self.tx]))
        self.device.advertising_data = bytes(
            AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, name.encode())])
        )
        self.subscribed = asyncio.Event()
        self.tx.on("subscription", self._on_subscription)
        self.device.on("connection", self._on_connection)
        self.connections = 0

    def _on_subscription(self, connection: Any, notify: bool, indicate: bool) -> None:
        if notify:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    def _on_connection(self, connection: Any) -> None:
        self.connections += 1
        connection.on("disconnection", lambda reason: self._on_disconnection())

    def _on_disconnection(self) -> None:
        self.subscribed.clear()
        if self.advertise:
            task = asyncio.ensure_future(self._advertise())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        self.advertise = True
        self._tasks: set[asyncio.Future[None]] = set()
        self._hci = asyncio.Lock()  # one advertising command at a time
        await self.device.power_on()
        await self._advertise()

    async def _advertise(self) -> None:
        async with self._hci:
            if self.advertise and not self.device.is_advertising:
                await self.device.start_advertising(
                    advertising_interval_min=ADVERTISING_INTERVAL_MS,
                    advertising_interval_max=ADVERTISING_INTERVAL_MS,
                )

    async def send(self, data: bytes) -> None:
        """Notify ``data`` to the subscribed central, chunked to ATT MTU - 3 bytes."""
        connections = list(self.device.connections.values())
        size = (connections[0].att_mtu if connections else 23) - 3
        for start in range(0, len(data), size):
            await self.device.notify_subscribers(self.tx, data[start : start + size])

    async def drop(self, come_back: bool = True) -> None:
        """Walk out of range: the link drops; with ``come_back`` advertise again."""
        self.advertise = come_back
        if not come_back:
            async with self._hci:
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def come_back(self) -> None:
        """Back in range after ``drop(come_back=False)``: advertise again."""
        self.advertise = True
        await self._advertise()

    async def close(self) -> None:
        await self.drop(come_back=False)
        await asyncio.gather(*self._tasks, return_exceptions=True)
