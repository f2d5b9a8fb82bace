"""Pseudo-terminals for containers, and passing their fds over unix sockets (SCM_RIGHTS)."""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
import termios

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int, str]:
    """Open a new pty pair from ``ptmx``; return (master fd, slave fd, slave path).

    The slave is opened through the master (TIOCGPTPEER) so no path under /dev/pts is trusted.
    """
    try:
        master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"open {ptmx}: {os.strerror(exc.errno or 0)}") from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(master)
        raise OSError(exc.errno, f"allocate pty from {ptmx}: {os.strerror(exc.errno or 0)}") \
            from None
    return master, slave, f"/dev/pts/{number}"


def set_window_size(fd: int, rows: int, columns: int) -> None:
    """Set a terminal's size (TIOCSWINSZ)."""
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    except OSError as exc:
        raise OSError(exc.errno, f"TIOCSWINSZ: {os.strerror(exc.errno or 0)}") from None


def set_controlling_terminal(fd: int) -> None:
    """Make the terminal ``fd`` the controlling terminal of the calling session leader."""
    try:
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    except OSError as exc:
        raise OSError(exc.errno, f"TIOCSCTTY: {os.strerror(exc.errno or 0)}") from None


def send_fd(sock: socket.socket, fd: int, message: bytes) -> None:
    """Send ``fd`` with ``message`` over a unix socket (SCM_RIGHTS)."""
    sock.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def receive_fd(sock: socket.socket, max_message: int = 4096) -> tuple[int, bytes]:
    """Receive one fd (and its message) sent by :func:`send_fd`; the fd is close-on-exec."""
    message, fds, _flags, _addr = socket.recv_fds(sock, max_message, 1,
                                                  socket.MSG_CMSG_CLOEXEC)
    if not fds:
        raise OSError(0, "no file descriptor received on the console socket")
    return fds[0], message
