"""A pod outlives the daemon: SIGKILL it with a running pod and find the pod intact."""

from __future__ import annotations

import json
import signal

from tests.daemon import DaemonProcess


def test_sigkilled_daemon_finds_the_pod_intact(daemon_factory: type[DaemonProcess],
                                               busybox_tar: object) -> None:
    d = daemon_factory().start()
    d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
    d.cli("pod", "create", "--name", "keep", "-m", "64m", check=True)
    d.cli("run", "-d", "--pod", "keep", "--name", "keep-srv", "busybox", "sh", "-c",
          "while true; do echo still-here | nc -l -p 9000; done", check=True)
    before = json.loads(d.cli("pod", "inspect", "keep", check=True).stdout)[0]
    d.stop(signal.SIGKILL)
    d.start()
    after = json.loads(d.cli("pod", "inspect", "keep", check=True).stdout)[0]
    assert after["State"] == "Running"
    assert after["InfraPid"] == before["InfraPid"]
    assert after["Containers"] == before["Containers"]
    out = d.cli("run", "--rm", "--pod", "keep", "busybox", "sh", "-c",
                "for i in $(seq 50); do nc 127.0.0.1 9000 && break; sleep 0.1; done",
                check=True).stdout
    assert out.strip() == "still-here"
    # Adopted, not only listed: the daemon stops and removes it as its own.
    d.cli("pod", "stop", "-t", "1", "keep", check=True)
    assert json.loads(d.cli("pod", "inspect", "keep", check=True).stdout)[0]["State"] == "Exited"
    d.cli("pod", "rm", "keep", check=True)
