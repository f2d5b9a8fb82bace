import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from servin.api.servin.v1 import common_pb2 as _common_pb2
from servin.api.servin.v1 import containers_pb2 as _containers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PodSpec(_message.Message):
    __slots__ = ("hostname", "labels", "annotations", "network", "ports", "share_pid", "cgroup_parent", "dns", "dns_search", "extra_hosts", "dns_options", "memory", "nano_cpus", "netns_path", "log_directory", "aliases", "sysctls", "runtime")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SysctlsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    SHARE_PID_FIELD_NUMBER: _ClassVar[int]
    CGROUP_PARENT_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    DNS_SEARCH_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HOSTS_FIELD_NUMBER: _ClassVar[int]
    DNS_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    NETNS_PATH_FIELD_NUMBER: _ClassVar[int]
    LOG_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    SYSCTLS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    network: str
    ports: _containers.RepeatedCompositeFieldContainer[_common_pb2.PortBinding]
    share_pid: bool
    cgroup_parent: str
    dns: _containers.RepeatedScalarFieldContainer[str]
    dns_search: _containers.RepeatedScalarFieldContainer[str]
    extra_hosts: _containers.RepeatedScalarFieldContainer[str]
    dns_options: _containers.RepeatedScalarFieldContainer[str]
    memory: int
    nano_cpus: int
    netns_path: str
    log_directory: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    sysctls: _containers.ScalarMap[str, str]
    runtime: str
    def __init__(self, hostname: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., network: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[_common_pb2.PortBinding, _Mapping]]] = ..., share_pid: _Optional[bool] = ..., cgroup_parent: _Optional[str] = ..., dns: _Optional[_Iterable[str]] = ..., dns_search: _Optional[_Iterable[str]] = ..., extra_hosts: _Optional[_Iterable[str]] = ..., dns_options: _Optional[_Iterable[str]] = ..., memory: _Optional[int] = ..., nano_cpus: _Optional[int] = ..., netns_path: _Optional[str] = ..., log_directory: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., sysctls: _Optional[_Mapping[str, str]] = ..., runtime: _Optional[str] = ...) -> None: ...

class PodContainer(_message.Message):
    __slots__ = ("id", "name", "status", "infra", "created", "pid")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INFRA_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: str
    infra: bool
    created: _timestamp_pb2.Timestamp
    pid: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., infra: _Optional[bool] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pid: _Optional[int] = ...) -> None: ...

class Pod(_message.Message):
    __slots__ = ("id", "name", "created", "state", "spec", "infra_container_id", "container_ids", "ip_address", "containers", "started", "cgroup_path", "shared_namespaces", "infra_pid", "network_mode", "networks", "published", "document")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    INFRA_CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_IDS_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    CGROUP_PATH_FIELD_NUMBER: _ClassVar[int]
    SHARED_NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    INFRA_PID_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MODE_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created: _timestamp_pb2.Timestamp
    state: str
    spec: PodSpec
    infra_container_id: str
    container_ids: _containers.RepeatedScalarFieldContainer[str]
    ip_address: str
    containers: _containers.RepeatedCompositeFieldContainer[PodContainer]
    started: _timestamp_pb2.Timestamp
    cgroup_path: str
    shared_namespaces: _containers.RepeatedScalarFieldContainer[str]
    infra_pid: int
    network_mode: str
    networks: _containers.RepeatedScalarFieldContainer[str]
    published: _containers.RepeatedCompositeFieldContainer[_containers_pb2.PortMapping]
    document: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., spec: _Optional[_Union[PodSpec, _Mapping]] = ..., infra_container_id: _Optional[str] = ..., container_ids: _Optional[_Iterable[str]] = ..., ip_address: _Optional[str] = ..., containers: _Optional[_Iterable[_Union[PodContainer, _Mapping]]] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cgroup_path: _Optional[str] = ..., shared_namespaces: _Optional[_Iterable[str]] = ..., infra_pid: _Optional[int] = ..., network_mode: _Optional[str] = ..., networks: _Optional[_Iterable[str]] = ..., published: _Optional[_Iterable[_Union[_containers_pb2.PortMapping, _Mapping]]] = ..., document: _Optional[str] = ...) -> None: ...

class CreatePodRequest(_message.Message):
    __slots__ = ("name", "spec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: PodSpec
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[PodSpec, _Mapping]] = ...) -> None: ...

class PodRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StopPodRequest(_message.Message):
    __slots__ = ("id", "timeout", "has_timeout")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HAS_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    timeout: int
    has_timeout: bool
    def __init__(self, id: _Optional[str] = ..., timeout: _Optional[int] = ..., has_timeout: _Optional[bool] = ...) -> None: ...

class KillPodRequest(_message.Message):
    __slots__ = ("id", "signal")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    signal: str
    def __init__(self, id: _Optional[str] = ..., signal: _Optional[str] = ...) -> None: ...

class RemovePodRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemovePodResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPodsRequest(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    def __init__(self, filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ...) -> None: ...

class ListPodsResponse(_message.Message):
    __slots__ = ("pods",)
    PODS_FIELD_NUMBER: _ClassVar[int]
    pods: _containers.RepeatedCompositeFieldContainer[Pod]
    def __init__(self, pods: _Optional[_Iterable[_Union[Pod, _Mapping]]] = ...) -> None: ...

class PrunePodsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PrunePodsResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted: _Optional[_Iterable[str]] = ...) -> None: ...

class PodTopRequest(_message.Message):
    __slots__ = ("id", "ps_args")
    ID_FIELD_NUMBER: _ClassVar[int]
    PS_ARGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    ps_args: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., ps_args: _Optional[_Iterable[str]] = ...) -> None: ...

class PodStatsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PodStats(_message.Message):
    __slots__ = ("id", "name", "cpu_percent", "memory_usage", "memory_limit", "net_rx", "net_tx", "block_read", "block_write", "pids", "containers")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    NET_RX_FIELD_NUMBER: _ClassVar[int]
    NET_TX_FIELD_NUMBER: _ClassVar[int]
    BLOCK_READ_FIELD_NUMBER: _ClassVar[int]
    BLOCK_WRITE_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    cpu_percent: float
    memory_usage: int
    memory_limit: int
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    containers: _containers.RepeatedCompositeFieldContainer[_containers_pb2.ContainerStats]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., cpu_percent: _Optional[float] = ..., memory_usage: _Optional[int] = ..., memory_limit: _Optional[int] = ..., net_rx: _Optional[int] = ..., net_tx: _Optional[int] = ..., block_read: _Optional[int] = ..., block_write: _Optional[int] = ..., pids: _Optional[int] = ..., containers: _Optional[_Iterable[_Union[_containers_pb2.ContainerStats, _Mapping]]] = ...) -> None: ...

class PodStatsResponse(_message.Message):
    __slots__ = ("pods",)
    PODS_FIELD_NUMBER: _ClassVar[int]
    pods: _containers.RepeatedCompositeFieldContainer[PodStats]
    def __init__(self, pods: _Optional[_Iterable[_Union[PodStats, _Mapping]]] = ...) -> None: ...
