"""1. Start latency: ``run --rm busybox true`` through each CLI, and the engine alone
(create+start+wait+remove through servin.client, no CLI start-up) beside ``crun run`` and
``runc run`` of the same busybox rootfs as an OCI bundle."""

from __future__ import annotations

from bench.env import Environment
from bench.measure import Measure, time_command, timed
from bench.model import Row, ScenarioResult
from servin.api.servin.v1 import containers_pb2
from servin.client.sync import Client

NAME = "start"
TITLE = "Start latency"
TARGETS = {"docker": "<= 0.5x", "podman": "< 1x"}


def engine_cycle(client: Client) -> None:
    """One container through the API: create, start, wait for its exit, remove."""
    spec = containers_pb2.ContainerSpec(image="busybox", cmd=["true"], network_mode="none")
    cid = client.containers.Create(containers_pb2.CreateContainerRequest(spec=spec)).id
    client.containers.Start(containers_pb2.StartContainerRequest(id=cid))
    client.containers.Wait(containers_pb2.WaitContainerRequest(id=cid))
    client.containers.Remove(containers_pb2.RemoveContainerRequest(id=cid))


def run(env: Environment, result: ScenarioResult) -> None:
    rounds = 3 if env.quick else 20
    engines = [env.servin, *env.peers()]
    cli = {e.name: Measure("ms") for e in engines}
    for engine in engines:
        engine.run_rm("true")  # warm caches: the first run pays for page faults, not the engine
    for _ in range(rounds):
        for engine in engines:  # alternate, so load on the shared machine hits every engine
            cli[engine.name].add(engine.run_rm("true") * 1000)
    metric = "`run --rm busybox true`"
    if len(engines) == 1:
        result.add(Row(metric, cli["servin"]))
    for peer in engines[1:]:
        result.add(Row(metric, cli["servin"], peer.name, cli[peer.name], TARGETS[peer.name]))

    bundle = env.bundle()
    runtimes: dict[str, Measure] = {}
    if bundle is not None:
        for runtime in ("crun", "runc"):
            why = bundle.check(runtime)
            if why is None:
                runtimes[runtime] = Measure("ms")
            else:
                result.notes.append(f"`{runtime} run` does not work here: {why}")
    cycle = Measure("ms")
    with Client(env.daemon.host) as client:
        engine_cycle(client)
        for _ in range(rounds):
            cycle.add(timed(lambda: engine_cycle(client)) * 1000)
            for runtime, measure in runtimes.items():
                measure.add(time_command(bundle.run_argv(runtime)) * 1000)  # type: ignore[union-attr]
    metric = "engine only: create+start+wait+remove (API)"
    if not runtimes:
        result.add(Row(metric, cycle, target="< 50 ms"))
    for runtime, measure in runtimes.items():
        result.add(Row(metric, cycle, f"{runtime} run", measure, "< 50 ms"))
