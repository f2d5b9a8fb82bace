"""The sequence crictl runs (runp, create, start, ps, inspect, logs, exec sync, stats, stop, rm,
stopp, rmp, pull, images, rmi, info, version), through the generated runtime.v1 stubs against a
real daemon; and a CRI sandbox is the same object as a core pod."""

from __future__ import annotations

import json
import re
import time

import grpc
import pytest

from servin.api.cri.runtime.v1 import api_pb2
from tests.cri.conftest import BUSYBOX, CRI

CRI_LOG_LINE = re.compile(
    rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (P|F) (.*)$")


def wait_for(check, timeout: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def pulled(cri: CRI) -> str:
    return str(cri.images.PullImage(api_pb2.PullImageRequest(
        image=api_pb2.ImageSpec(image=BUSYBOX)), timeout=120).image_ref)


def test_crictl_sequence(cri: CRI, pulled: str) -> None:
    rt = cri.runtime
    # version, info
    assert rt.Version(api_pb2.VersionRequest(), timeout=10).runtime_name == "servin"
    assert rt.Status(api_pb2.StatusRequest(verbose=True), timeout=30).status.conditions
    # runp
    pod = cri.run_pod("seq")
    status = rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod,
                                                                  verbose=True), timeout=30)
    assert status.status.state == api_pb2.SANDBOX_READY
    assert status.status.metadata.name == "seq"
    assert status.status.metadata.namespace == "testns"
    assert status.status.labels["app"] == "seq"
    assert status.status.annotations == {"note": "seq"}  # the door's own keys are hidden
    ip = status.status.network.ip
    assert ip.startswith(f"10.224.{cri.slot}."), ip
    assert json.loads(status.info["info"])["netnsPath"]
    # The sandbox is a core pod: servin pod ls shows it, its infra container is the pod's.
    assert pod in cri.daemon.cli("pod", "ls", "-q", "--no-trunc", check=True).stdout.split()
    assert _infra_of(cri, pod)
    # create, start
    cid = cri.create(pod, "seq", "app", ["sh", "-c", "echo hello; echo oops >&2; "
                                         "printf partial; sleep 1000"],
                     labels={"tier": "web"}, envs=[api_pb2.KeyValue(key="GREETING",
                                                                     value=b"hi there")])
    c = rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid), timeout=30).status
    assert c.state == api_pb2.CONTAINER_CREATED
    rt.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
    # ps (filters: pod, state, label, id prefix)
    for f in (api_pb2.ContainerFilter(pod_sandbox_id=pod),
              api_pb2.ContainerFilter(state=api_pb2.ContainerStateValue(
                  state=api_pb2.CONTAINER_RUNNING), pod_sandbox_id=pod),
              api_pb2.ContainerFilter(label_selector={"tier": "web"}),
              api_pb2.ContainerFilter(id=cid[:12])):
        found = rt.ListContainers(api_pb2.ListContainersRequest(filter=f), timeout=30).containers
        assert [x.id for x in found] == [cid], f
    none = rt.ListContainers(api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(
        label_selector={"tier": "db"})), timeout=30).containers
    assert not none
    # The CRI labels are the core container's: servin ps filters on them.
    assert cri.daemon.cli("ps", "-q", "--no-trunc", "--filter", "label=tier=web",
                          check=True).stdout.split() == [cid]
    # inspect
    c = rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid, verbose=True),
                           timeout=30).status
    assert c.state == api_pb2.CONTAINER_RUNNING and c.started_at > 0
    assert c.metadata.name == "app" and c.labels["tier"] == "web"
    assert c.image.image == BUSYBOX and c.image_ref == pulled
    log_path = c.log_path
    assert log_path == str(cri.log_dir / "seq" / "app.log")
    # logs: the kubelet's CRI format, a partial line marked P
    lines = wait_for(lambda: _log_lines(log_path, 2), what="two log lines")
    parsed = [CRI_LOG_LINE.match(line) for line in lines]
    assert all(parsed), lines
    entries = [(m.group(1), m.group(2), m.group(3)) for m in parsed if m]
    assert (b"stdout", b"F", b"hello") in entries
    assert (b"stderr", b"F", b"oops") in entries
    # servin logs reads the CRI file too, streams apart.
    logs = cri.daemon.cli("logs", cid, check=True)
    assert (logs.stdout, logs.stderr) == ("hello\n", "oops\n")
    # exec sync: separate streams, exit code, the container's environment
    r = cri.exec_sync(cid, ["sh", "-c", "echo $GREETING; echo err >&2; exit 3"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"hi there\n", b"err\n", 3)
    r = cri.exec_sync(cid, ["hostname"])
    assert r.stdout == b"seq\n"
    # stats
    stats = rt.ContainerStats(api_pb2.ContainerStatsRequest(container_id=cid), timeout=30).stats
    assert stats.attributes.id == cid
    assert stats.memory.working_set_bytes.value > 0
    assert stats.writable_layer.fs_id.mountpoint and stats.writable_layer.inodes_used.value > 0
    all_stats = rt.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=30).stats
    assert cid in [s.attributes.id for s in all_stats]
    pod_stats = rt.PodSandboxStats(api_pb2.PodSandboxStatsRequest(pod_sandbox_id=pod),
                                   timeout=30).stats
    assert [s.attributes.id for s in pod_stats.linux.containers] == [cid]
    # stop, rm
    rt.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=2), timeout=60)
    c = rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid), timeout=30).status
    assert c.state == api_pb2.CONTAINER_EXITED and c.finished_at >= c.started_at
    assert c.exit_code in (137, 143) and c.reason == "Error"
    # The unterminated line is logged when the output ends.
    last = CRI_LOG_LINE.match((_log_lines(log_path, 3) or [b""])[-1])
    assert last and last.group(1) == b"stdout" and last.group(3) == b"partial"
    rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid), timeout=60)
    with pytest.raises(grpc.RpcError) as err:
        rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # stopp, rmp: the network goes with the sandbox
    rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    s = rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod), timeout=30)
    assert s.status.state == api_pb2.SANDBOX_NOTREADY and not s.status.network.ip
    assert not cri.leases() and not cri.bridge_ports() and not cri.netns()
    rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    assert pod not in [p.id for p in rt.ListPodSandbox(api_pb2.ListPodSandboxRequest(),
                                                       timeout=30).items]
    assert not _infra_of(cri, pod)
    assert pod not in cri.daemon.cli("pod", "ls", "-q", "--no-trunc", check=True).stdout
    # Idempotent: stopping and removing what is gone is no error.
    rt.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=30)
    rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=30)
    rt.StopContainer(api_pb2.StopContainerRequest(container_id=cid), timeout=30)
    rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid), timeout=30)


def _infra_of(cri: CRI, pod: str) -> list[str]:
    return cri.daemon.cli("ps", "-aq", "--no-trunc", "--filter",
                          f"label=io.servin.pod.infra={pod}", check=True).stdout.split()


def _log_lines(path: str, count: int) -> list[bytes] | None:
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    return lines if len(lines) >= count else None


def test_exec_sync_timeout_kills_the_process(cri: CRI, pulled: str) -> None:
    pod = cri.run_pod("timeout")
    try:
        cid = cri.create(pod, "timeout", "sleeper", ["sleep", "1000"])
        cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
        with pytest.raises(grpc.RpcError) as err:
            cri.exec_sync(cid, ["sleep", "4321"], timeout=1)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The timed-out process is gone (critest's "execSync with timeout").
        ps = wait_for(lambda: (r := cri.exec_sync(cid, ["ps"])) and b"4321" not in r.stdout
                      and r, what="the timed-out sleep to end")
        assert b"sleep 1000" in ps.stdout
        # A command that does not exist exits 127 (no error), as a shell reports it.
        r = cri.exec_sync(cid, ["/no/such/program"])
        assert r.exit_code in (126, 127) and r.stderr
    finally:
        cri.remove_pod(pod)


def test_reopen_container_log(cri: CRI, pulled: str) -> None:
    pod = cri.run_pod("reopen")
    try:
        cid = cri.create(pod, "reopen", "ticker",
                         ["sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); "
                                      "sleep 0.05; done"])
        cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)
        path = str(cri.log_dir / "reopen" / "ticker.log")
        wait_for(lambda: _log_lines(path, 3), what="log lines")
        # The kubelet's rotation: rename, then ReopenContainerLog; nothing is lost.
        import os

        os.rename(path, path + ".1")
        cri.runtime.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=cid),
                                       timeout=30)
        wait_for(lambda: _log_lines(path, 3), what="lines in the new file")
        cri.runtime.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=0),
                                  timeout=60)
        status = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid),
                                             timeout=30).status
        assert status.exit_code == 137  # timeout 0: SIGKILL at once, as containerd
        numbers = []
        for name in (path + ".1", path):
            with open(name, "rb") as f:
                for line in f.read().splitlines():
                    m = CRI_LOG_LINE.match(line)
                    assert m, line
                    numbers.append(int(m.group(3).removeprefix(b"line")))
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        # A stopped container's log cannot be reopened.
        with pytest.raises(grpc.RpcError) as err:
            cri.runtime.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=cid),
                                           timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        cri.remove_pod(pod)


def test_supplemental_groups_policy(cri: CRI, pulled: str) -> None:
    image = "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest"
    cri.images.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image)),
                         timeout=120)
    pod = cri.run_pod("groups")
    try:
        # The image's user 1000 is in group 50000 of its /etc/group: Merge adds it, Strict not.
        for name, policy, expected in (("merge", api_pb2.Merge, [1000, 1234, 50000]),
                                       ("strict", api_pb2.Strict, [1000, 1234])):
            sc = api_pb2.LinuxContainerSecurityContext(
                run_as_user=api_pb2.Int64Value(value=1000), supplemental_groups=[1234],
                supplemental_groups_policy=policy)
            cid = cri.create(pod, "groups", name, ["sleep", "1000"], image=image,
                             linux=api_pb2.LinuxContainerConfig(security_context=sc))
            cri.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid),
                                       timeout=60)
            user = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(
                container_id=cid), timeout=30).status.user.linux
            assert (user.uid, user.gid, sorted(user.supplemental_groups)) == (1000, 1000,
                                                                               expected)
            out = cri.exec_sync(cid, ["id", "-G"]).stdout.split()
            assert sorted(int(g) for g in out) == expected
    finally:
        cri.remove_pod(pod)


def _listed(cri: CRI, pod: str) -> dict[str, api_pb2.Container]:
    reply = cri.runtime.ListContainers(api_pb2.ListContainersRequest(
        filter=api_pb2.ContainerFilter(pod_sandbox_id=pod)), timeout=30)
    return {c.id: c for c in reply.containers}


def _as_status_says(cri: CRI, cid: str, pod: str) -> api_pb2.Container:
    """The list element ContainerStatus implies (the list is served from cached bytes; the
    status is built afresh from the record)."""
    s = cri.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid),
                                    timeout=30).status
    return api_pb2.Container(id=s.id, pod_sandbox_id=pod, metadata=s.metadata, image=s.image,
                             image_ref=s.image_ref, image_id=s.image_id, state=s.state,
                             created_at=s.created_at, labels=s.labels,
                             annotations=s.annotations)


def test_list_follows_every_change(cri: CRI, pulled: str) -> None:
    """ListContainers answers from per-container cached messages: each change of a container
    shows at once, the others' stay as they were, a removed one is gone."""
    rt = cri.runtime
    pod = cri.run_pod("lister")
    try:
        a = cri.create(pod, "lister", "a", ["sleep", "1000"], labels={"n": "a"})
        b = cri.create(pod, "lister", "b", ["sleep", "1000"], labels={"n": "b"},
                       annotations={"note": "b"})
        for _ in range(2):  # the second answer comes from the cache
            listed = _listed(cri, pod)
            assert listed == {a: _as_status_says(cri, a, pod), b: _as_status_says(cri, b, pod)}
        before_b = listed[b]
        rt.StartContainer(api_pb2.StartContainerRequest(container_id=a), timeout=60)
        listed = _listed(cri, pod)
        assert listed[a].state == api_pb2.CONTAINER_RUNNING
        assert listed[a] == _as_status_says(cri, a, pod)
        assert listed[b] == before_b
        running = rt.ListContainers(api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(
            state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING))),
            timeout=30).containers
        assert [c.id for c in running] == [a]
        rt.StopContainer(api_pb2.StopContainerRequest(container_id=a, timeout=0), timeout=60)
        listed = _listed(cri, pod)
        assert listed[a].state == api_pb2.CONTAINER_EXITED
        assert listed[a] == _as_status_says(cri, a, pod)
        rt.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=b), timeout=60)
        assert list(_listed(cri, pod)) == [a]
    finally:
        cri.remove_pod(pod)
