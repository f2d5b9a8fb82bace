"""Regression tests per CVE class of container runtimes.

- CVE-2019-5736: a container reaching the runtime's binary through ``/proc/PID/exe`` of a
  process joining it, or through ``/proc/self/exe`` executed by the runtime.
- CVE-2024-21626: file descriptors of the runtime leaking into the container, and a working
  directory ``/proc/self/fd/N`` that names one (for ``run`` and ``exec``).

The other classes have their tests beside the code they guard, run in CI like these:
``tests/files/test_cp.py::test_cp_races_a_container_swapping_a_path_component``
(CVE-2018-15664, cp during a symlink swap),
``test_symlinked_mount_destination_cannot_redirect_a_mount`` in
``tests/runtime/test_native_security.py`` and
``test_image_with_symlinked_dev_or_proc_cannot_mount_on_host`` in
``tests/containers/test_isolation.py`` (mount destinations through symlinks),
``tests/images/test_hostile_layers.py`` (layer escapes).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from pathlib import Path

from tests.daemon import DaemonProcess
from tests.hardening.figures import count

EXECS = 40

# The container's root watches every process: one whose /proc/PID/exe is not its own busybox
# is a process joining from the host; opening that link is the attack. Only shell builtins
# run in the loop (no fork), so it scans as fast as the shell can.
WATCHER = r"""
: > /hits
while :; do
  for p in /proc/[0-9]*; do
    e=$p/exe
    if [ -e "$e" ] && ! [ "$e" -ef /bin/busybox ]; then
      read -r -n 4 x < "$e" && echo "$p $x" >> /hits
    fi
  done 2>/dev/null
done
"""


def test_cve_2019_5736_proc_pid_exe_of_joining_execs(engine: DaemonProcess) -> None:
    """Root in the container tries to open /proc/PID/exe of every process joining it by
    exec; none of 40 execs may be opened."""
    engine.cli("run", "-d", "--name", "watcher", "busybox", "sh", "-c", WATCHER, check=True)
    try:
        for _ in range(EXECS):
            engine.cli("exec", "watcher", "true", check=True)
        hits = engine.cli("exec", "watcher", "cat", "/hits", check=True).stdout
        # One line per successful open; an exec's process may be opened several times.
        opened = sorted({line.split()[0] for line in hits.splitlines() if line.strip()})
        count("CVE-2019-5736 execs watched", EXECS)
        count("CVE-2019-5736 /proc/PID/exe opened", len(opened))
        print(f"{len(opened)} of {EXECS} execs had /proc/PID/exe opened from the container",
              file=sys.stderr)
        assert opened == [], f"the container opened the joining process's exe: {opened[:5]}"
    finally:
        engine.cli("rm", "-f", "watcher")


def _seals(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        return 0  # not a memfd
    finally:
        os.close(fd)


def test_cve_2019_5736_proc_self_exe_is_a_sealed_copy(engine: DaemonProcess) -> None:
    """What a container reaches as the runtime's /proc/self/exe (the monitor, and every init
    and exec process forked from it) is a sealed copy, never the host's interpreter."""
    engine.cli("run", "-d", "--name", "selfexe", "busybox", "sleep", "1000", check=True)
    try:
        cid = engine.cli("inspect", "-f", "{{.Id}}", "selfexe", check=True).stdout.strip()
        monitor = (engine.exec_root / "containers" / cid / "monitor.pid").read_text().split()[0]
        exe = f"/proc/{monitor}/exe"
        assert os.readlink(exe).startswith("/memfd:"), os.readlink(exe)
        wanted = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
        assert _seals(exe) & wanted == wanted
        with open(exe, "rb") as copy, open(os.path.realpath(sys.executable), "rb") as real:
            assert copy.read() == real.read()
        # The classic attack: the container's program is /proc/self/exe (a symlink, and a
        # script naming it as interpreter). Whatever it runs, the host's binary is untouched.
        binary = Path(os.path.realpath(sys.executable))
        before = hashlib.sha256(binary.read_bytes()).hexdigest()
        engine.cli("exec", "selfexe", "sh", "-c", "ln -s /proc/self/exe /evil && "
                   "printf '#!/proc/self/exe\\n' > /evil.sh && chmod +x /evil.sh", check=True)
        for program in ("/evil", "/evil.sh"):
            result = engine.cli("exec", "selfexe", program)
            assert "Traceback" not in result.stderr
        assert hashlib.sha256(binary.read_bytes()).hexdigest() == before
    finally:
        engine.cli("rm", "-f", "selfexe")


def test_cve_2024_21626_no_fd_leaks_and_no_proc_self_fd_workdir(engine: DaemonProcess) -> None:
    """Neither ``run`` nor ``exec`` hands the container a runtime fd, and a working directory
    ``/proc/self/fd/N`` never lands on the host."""
    fds = engine.cli("run", "--rm", "busybox", "ls", "/proc/self/fd", check=True).stdout.split()
    assert sorted(fds) == ["0", "1", "2", "3"], fds  # 3: ls reading the directory
    engine.cli("run", "-d", "--name", "leaks", "busybox", "sleep", "1000", check=True)
    try:
        fds = engine.cli("exec", "leaks", "ls", "/proc/self/fd", check=True).stdout.split()
        assert sorted(fds) == ["0", "1", "2", "3"], fds
        fds = engine.cli("exec", "-t", "leaks", "ls", "/proc/self/fd", check=True).stdout.split()
        assert sorted(fds) == ["0", "1", "2", "3"], fds
        for n in range(3, 12):
            workdir = f"/proc/self/fd/{n}"
            for command in (["run", "--rm", "-w", workdir, "busybox", "ls", ".."],
                            ["exec", "-w", workdir, "leaks", "ls", ".."]):
                result = engine.cli(*command)
                assert result.returncode != 0, (command, result.stdout)
                assert "Traceback" not in result.stderr
        count("CVE-2024-21626 workdirs tried", 2 * 9)
    finally:
        engine.cli("rm", "-f", "leaks")
