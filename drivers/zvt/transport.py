"""Links to a ZVT terminal: TCP (plain APDUs) and serial (DLE/CRC frames with ACK/NAK;
the port opened and configured with pyserial, then driven by the event loop).

Timeouts (``ZvtTimeouts``, all configurable; defaults follow the ZVT specification and
the values common implementations use):

- ``t3`` = 5 s: the terminal acknowledges a command (80 00 / 84 xx) within T3.
- ``t4`` = 180 s: while the terminal is master (card, PIN, host), the register waits up
  to T4 for its next message; intermediate status messages restart the wait.
- ``ack`` = 2 s (+ the frame's transmission time at the line's baud rate): serial only,
  the wait for ACK/NAK after a frame; on NAK or silence the frame is sent again, at most
  ``retries`` = 3 times (4 transmissions in all).
- ``inter_byte`` = 0.5 s: serial only, silence inside a frame after which the half frame
  is dropped (a truncated frame), so the next DLE STX starts clean.

Both sides use these classes: the register's ZvtClient and the terminal simulator.
Every byte on the wire can be handed to a ``trace`` callback (``"tx"``/``"rx"``, bytes)
for recordings; the client never logs raw bytes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.zvt.apdu import total_size
from drivers.zvt.errors import ZvtConnectionLost, ZvtProtocolError, ZvtTimeout
from drivers.zvt.framing import (
    ACK,
    NAK,
    Abandoned,
    Control,
    CrcError,
    Deframer,
    Frame,
    encode_frame,
)

DEFAULT_TCP_PORT = 20007

TraceHook = Callable[[str, bytes], None]


@dataclass
class ZvtTimeouts:
    t3: float = 5.0
    t4: float = 180.0
    ack: float = 2.0
    inter_byte: float = 0.5
    retries: int = 3


# ---- byte streams ----


class ByteStream(ABC):
    @abstractmethod
    async def read(self) -> bytes:
        """Some bytes; b"" at end of stream."""

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class SocketStream(ByteStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        try:
            return await self.reader.read(4096)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            raise ZvtConnectionLost(f"terminal connection lost while writing: {e}") from e

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class FdStream(ByteStream):
    """A non-blocking file descriptor (serial device or pty) driven by the event loop."""

    def __init__(self, fd: int, *, owns_fd: bool = True) -> None:
        self.fd = fd
        self.owns_fd = owns_fd
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._eof = False
        self._closed = False
        self._loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._eof = True
            self._loop.remove_reader(self.fd)
        self._queue.put_nowait(data)

    async def read(self) -> bytes:
        if self._eof and self._queue.empty():
            return b""
        return await self._queue.get()

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                fut: asyncio.Future[None] = self._loop.create_future()
                self._loop.add_writer(self.fd, _set_done, fut)
                try:
                    await fut
                finally:
                    self._loop.remove_writer(self.fd)
                continue
            except OSError as e:
                raise ZvtConnectionLost(f"serial line lost while writing: {e}") from e
            view = view[n:]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._eof:
            self._loop.remove_reader(self.fd)
        if self.owns_fd:
            os.close(self.fd)


_BAUD = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


def configure_serial(fd: int, baudrate: int = 9600) -> None:
    """Raw 8N2 at ``baudrate`` (ZVT's classic line settings); works on ptys too."""
    if baudrate not in _BAUD:
        raise ValueError(f"unsupported baud rate {baudrate}; use one of {sorted(_BAUD)}")
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag = attrs[0], attrs[1], attrs[2], attrs[3]
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR)
    iflag &= ~(termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CRTSCTS)
    cflag |= termios.CS8 | termios.CSTOPB | termios.CREAD | termios.CLOCAL
    attrs[0], attrs[1], attrs[2], attrs[3] = iflag, oflag, cflag, lflag
    attrs[4] = attrs[5] = _BAUD[baudrate]
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


# ---- transports ----


class ZvtTransport(ABC):
    kind = ""

    def __init__(
        self,
        stream: ByteStream,
        timeouts: ZvtTimeouts | None = None,
        trace: TraceHook | None = None,
    ) -> None:
        self.stream = stream
        self.timeouts = timeouts or ZvtTimeouts()
        self.trace = trace
        self.closed = False

    def _trace(self, direction: str, data: bytes) -> None:
        if self.trace is not None and data:
            self.trace(direction, data)

    @abstractmethod
    async def send(self, apdu: bytes) -> None: ...

    @abstractmethod
    async def receive(self, timeout: float | None) -> bytes:
        """The next APDU; ZvtTimeout after ``timeout`` s, ZvtConnectionLost at EOF."""

    async def close(self) -> None:
        self.closed = True
        await self.stream.close()


class TcpTransport(ZvtTransport):
    """Plain APDUs back to back; the length field delimits them."""

    kind = "tcp"

    def __init__(
        self,
        stream: ByteStream,
        timeouts: ZvtTimeouts | None = None,
        trace: TraceHook | None = None,
    ) -> None:
        super().__init__(stream, timeouts, trace)
        self._buf = bytearray()
        self._eof = False

    async def send(self, apdu: bytes) -> None:
        if self.closed:
            raise ZvtConnectionLost("terminal connection is closed")
        self._trace("tx", apdu)
        await self.stream.write(apdu)

    async def receive(self, timeout: float | None) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            size = total_size(bytes(self._buf[:5]))
            if size is not None and len(self._buf) >= size:
                apdu = bytes(self._buf[:size])
                del self._buf[:size]
                return apdu
            if self._eof or self.closed:
                raise ZvtConnectionLost(
                    "terminal closed the connection"
                    + (f" mid-APDU ({len(self._buf)} bytes pending)" if self._buf else "")
                )
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise ZvtTimeout(f"no message from the terminal within {timeout:g} s")
            try:
                chunk = await asyncio.wait_for(self.stream.read(), remaining)
            except TimeoutError:
                raise ZvtTimeout(f"no message from the terminal within {timeout:g} s") from None
            if not chunk:
                self._eof = True
                continue
            self._trace("rx", chunk)
            self._buf += chunk


_EOF = object()


class SerialTransport(ZvtTransport):
    """Framed APDUs with ACK/NAK, retransmission and resynchronisation after garbage.

    A background task reads the line: good frames are ACKed and queued, frames with a
    bad CRC are NAKed (the peer repeats them), ACK/NAK bytes go to the sender.
    Fault hooks for the simulator: ``tx_mangle(frame, attempt)`` rewrites outgoing
    frames, ``nak_hook()`` returning True NAKs the good incoming frame at hand.
    """

    kind = "serial"

    def __init__(
        self,
        stream: ByteStream,
        timeouts: ZvtTimeouts | None = None,
        trace: TraceHook | None = None,
        baudrate: int | None = None,
    ) -> None:
        super().__init__(stream, timeouts, trace)
        self.baudrate = baudrate
        self.deframer = Deframer()
        self._frames: asyncio.Queue[object] = asyncio.Queue()
        self._controls: asyncio.Queue[object] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self.tx_mangle: Callable[[bytes, int], bytes] | None = None
        self.nak_hook: Callable[[], bool] | None = None
        self.muted = False  # a pulled cable: incoming bytes are dropped, nothing is ACKed
        self.naks_sent = 0
        self.naks_received = 0
        self.retransmits = 0
        self._eof = False

    def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            self._trace("tx", data)
            await self.stream.write(data)

    async def _read_loop(self) -> None:
        try:
            while True:
                if self.deframer.in_frame:
                    try:
                        chunk = await asyncio.wait_for(self.stream.read(), self.timeouts.inter_byte)
                    except TimeoutError:
                        self.deframer.abandon()
                        continue
                else:
                    chunk = await self.stream.read()
                if not chunk:
                    break
                if self.muted:
                    continue
                self._trace("rx", chunk)
                for ev in self.deframer.feed(chunk):
                    await self._dispatch(ev)
        except ZvtConnectionLost:
            pass
        finally:
            self._eof = True
            self._frames.put_nowait(_EOF)
            self._controls.put_nowait(_EOF)

    async def _dispatch(self, ev: object) -> None:
        if isinstance(ev, Frame):
            if self.nak_hook is not None and self.nak_hook():
                self.naks_sent += 1
                await self._write(bytes([NAK]))
                return
            await self._write(bytes([ACK]))
            self._frames.put_nowait(ev.apdu)
        elif isinstance(ev, CrcError):
            self.naks_sent += 1
            await self._write(bytes([NAK]))
        elif isinstance(ev, Control):
            self._controls.put_nowait(ev)
        elif isinstance(ev, Abandoned):
            pass

    def _ack_timeout(self, nbytes: int) -> float:
        extra = nbytes * 11 / self.baudrate if self.baudrate else 0.0
        return self.timeouts.ack + extra

    async def send(self, apdu: bytes) -> None:
        self.start()
        if self._eof or self.closed:
            raise ZvtConnectionLost("serial line is closed")
        frame = encode_frame(apdu)
        attempts = self.timeouts.retries + 1
        last = "no ACK"
        for attempt in range(attempts):
            while not self._controls.empty():  # stale ACK/NAK from an earlier exchange
                if self._controls.get_nowait() is _EOF:
                    raise ZvtConnectionLost("serial line closed")
            if attempt:
                self.retransmits += 1
            wire = self.tx_mangle(frame, attempt) if self.tx_mangle else frame
            await self._write(wire)
            try:
                ev = await asyncio.wait_for(self._controls.get(), self._ack_timeout(len(frame)))
            except TimeoutError:
                last = "no ACK/NAK within the ACK timeout"
                continue
            if ev is _EOF:
                raise ZvtConnectionLost("serial line closed while waiting for ACK")
            if ev is Control.ACK:
                return
            self.naks_received += 1
            last = "NAK"
        raise ZvtProtocolError(f"frame not acknowledged after {attempts} transmissions ({last})")

    async def receive(self, timeout: float | None) -> bytes:
        self.start()
        try:
            item = await asyncio.wait_for(self._frames.get(), timeout)
        except TimeoutError:
            raise ZvtTimeout(f"no message from the terminal within {timeout:g} s") from None
        if item is _EOF:
            self._frames.put_nowait(_EOF)
            raise ZvtConnectionLost("serial line closed")
        assert isinstance(item, bytes)
        return item

    async def close(self) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.stream.close()


async def open_tcp(
    host: str,
    port: int = DEFAULT_TCP_PORT,
    timeouts: ZvtTimeouts | None = None,
    trace: TraceHook | None = None,
    connect_timeout: float = 5.0,
) -> TcpTransport:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), connect_timeout
        )
    except TimeoutError:
        raise ZvtTimeout(
            f"terminal {host}:{port} did not accept within {connect_timeout:g} s"
        ) from None
    except OSError as e:
        raise ZvtConnectionLost(f"cannot connect to terminal {host}:{port}: {e}") from e
    return TcpTransport(SocketStream(reader, writer), timeouts, trace)


class SerialPortStream(FdStream):
    """A serial port opened and configured by pyserial, read and written on the loop."""

    def __init__(self, port: Any) -> None:
        super().__init__(port.fileno(), owns_fd=False)
        self.port = port

    async def close(self) -> None:
        await super().close()
        self.port.close()


def open_port(path: str, baudrate: int) -> Any:
    import serial

    return serial.Serial(
        path,
        baudrate=baudrate,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_TWO,  # ZVT's classic 8N2
        timeout=0,
        exclusive=True,  # one register per terminal line
    )


async def open_serial(
    path: str,
    baudrate: int = 9600,
    timeouts: ZvtTimeouts | None = None,
    trace: TraceHook | None = None,
) -> SerialTransport:
    """The terminal on a serial line (pyserial: raw 8N2 at ``baudrate``, held exclusively)."""
    import serial

    if baudrate not in _BAUD:
        raise ValueError(f"unsupported baud rate {baudrate}; use one of {sorted(_BAUD)}")
    try:
        port = await asyncio.to_thread(open_port, path, baudrate)
    except (serial.SerialException, OSError) as e:
        raise ZvtConnectionLost(f"cannot open serial line {path}: {e}") from e
    t = SerialTransport(SerialPortStream(port), timeouts, trace, baudrate=baudrate)
    t.start()
    return t
