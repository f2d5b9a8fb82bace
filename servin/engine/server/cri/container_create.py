"""CreateContainer: a CRI container config onto the core's CreateRequest, as a member of the
sandbox's core pod (which gives it the pod's network, IPC and UTS namespaces and cgroup)."""

from __future__ import annotations

import os
import signal

from servin.api.cri.runtime.v1 import api_pb2
from servin.engine.containers.model import (
    ContainerConfig,
    CreateRequest,
    HostConfig,
    LogConfig,
)
from servin.engine.server.cri import common, security
from servin.engine.server.cri.base import Verbs
from servin.engine.server.cri.sandbox_status import sandbox_metadata, sandbox_options, sandbox_state
from servin.engine.server.grpc.rpc import Context
from servin.errors import Conflict, InvalidArgument, NotFound


def _env(items: list[api_pb2.KeyValue]) -> list[str]:
    out = []
    for kv in items:
        if not kv.key or "=" in kv.key:
            raise InvalidArgument(f"invalid environment variable name {kv.key!r}")
        try:
            value = kv.value.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"environment variable {kv.key}: not UTF-8") from None
        out.append(f"{kv.key}={value}")
    return out


def _stop_signal(value: api_pb2.Signal.ValueType) -> str:
    if not value:
        return ""
    name = api_pb2.Signal.Name(value)
    try:
        return str(int(signal.Signals[name]))
    except KeyError:
        return name.removeprefix("SIG")


class ContainerCreateVerbs(Verbs):
    """CreateContainer."""

    async def CreateContainer(self, request: api_pb2.CreateContainerRequest,
                              context: Context) -> api_pb2.CreateContainerResponse:
        config = request.config
        meta = config.metadata
        common.check_name("container", meta.name)
        common.check_user_annotations(config.annotations)
        if not config.image.image:
            raise InvalidArgument("CreateContainer: config.image.image is required")
        view = await self.cri_sandbox(request.pod_sandbox_id)
        if sandbox_state(view) != api_pb2.SANDBOX_READY:
            raise Conflict(f"pod sandbox {view.pod.id} is not ready")
        options = sandbox_options(view)
        sandbox_meta = sandbox_metadata(view)
        linux = config.linux
        sc = linux.security_context
        if sc.privileged and not options.get("privileged"):
            raise InvalidArgument("no privileged container allowed in a non-privileged sandbox")
        try:
            image = await self.core.images.get(config.image.image)
        except NotFound:
            raise NotFound(f"image {config.image.image!r} not found (pull it first)") from None

        log_path = ""
        if config.log_path:
            directory = str(options.get("log_directory") or "")
            log_path = os.path.join(directory, config.log_path) if directory \
                else config.log_path
            if not log_path.startswith("/"):
                raise InvalidArgument(f"log path {log_path!r} is not absolute (the sandbox has "
                                      "no log_directory)")
        annotations = {
            **common.key_values(config.annotations),
            common.KIND: common.CONTAINER_KIND,
            common.METADATA: common.dump({"name": meta.name, "attempt": meta.attempt}),
            common.IMAGE: config.image.image,
            common.LOG_PATH: log_path,
        }
        host = HostConfig(
            mounts=security.mounts(list(config.mounts)),
            devices=security.devices(list(config.devices)),
            resources=security.resources(linux.resources),
            annotations=annotations,
            runtime=view.pod.config.runtime,
            log_config=LogConfig(type="cri", path=log_path) if log_path else LogConfig(),
        )
        await security.apply(host, sc)
        ns = sc.namespace_options
        if ns.pid == api_pb2.NODE:
            host.pid_mode = "host"
        elif ns.pid == api_pb2.TARGET:
            target = await self.cri_container(ns.target_id)
            if target.pod_id != view.pod.id:
                raise InvalidArgument("the target of a TARGET PID namespace must be in the "
                                      "same pod")
            host.pid_mode = f"container:{target.id}"
        cmd_given = bool(config.command)
        container = ContainerConfig(
            image=image.id,
            # Kubernetes' rule: command replaces the entrypoint (and then the image's CMD is
            # not used), args replace CMD.
            entrypoint=list(config.command) if cmd_given else None,
            cmd=list(config.args),
            env=_env(list(config.envs)),
            working_dir=config.working_dir,
            user=security.user_of(sc),
            labels=common.key_values(config.labels),
            tty=config.tty, open_stdin=config.stdin, stdin_once=config.stdin_once,
            stop_signal=_stop_signal(config.stop_signal),
        )
        name = common.core_name(meta.name, sandbox_meta.name, sandbox_meta.namespace,
                                sandbox_meta.uid, meta.attempt)
        created = await self.core.containers.create(CreateRequest(
            name=name, config=container, host_config=host, pod_id=view.pod.id))
        return api_pb2.CreateContainerResponse(container_id=created.container.id)
