import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from servin.api.servin.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("api_version",)
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    api_version: str
    def __init__(self, api_version: _Optional[str] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ("version", "api_version", "git_commit", "python_version", "os", "arch", "kernel_version", "build_time", "components")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    KERNEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    version: str
    api_version: str
    git_commit: str
    python_version: str
    os: str
    arch: str
    kernel_version: str
    build_time: _timestamp_pb2.Timestamp
    components: _containers.RepeatedCompositeFieldContainer[ComponentVersion]
    def __init__(self, version: _Optional[str] = ..., api_version: _Optional[str] = ..., git_commit: _Optional[str] = ..., python_version: _Optional[str] = ..., os: _Optional[str] = ..., arch: _Optional[str] = ..., kernel_version: _Optional[str] = ..., build_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., components: _Optional[_Iterable[_Union[ComponentVersion, _Mapping]]] = ...) -> None: ...

class ComponentVersion(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("id", "name", "containers", "containers_running", "containers_paused", "containers_stopped", "images", "storage_driver", "cgroup_driver", "cgroup_version", "kernel_version", "operating_system", "os_type", "architecture", "ncpu", "mem_total", "root_dir", "exec_root", "default_runtime", "runtimes", "server_version", "system_time", "insecure_registries", "registry_mirrors", "warnings", "logging_driver", "security_options", "pods", "volumes", "networks", "socket", "daemon_pid", "started_at", "cpu_busy_ns", "cpu_total_ns", "mem_available", "load_average")
    class RegistryMirrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_PAUSED_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_STOPPED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_DRIVER_FIELD_NUMBER: _ClassVar[int]
    CGROUP_DRIVER_FIELD_NUMBER: _ClassVar[int]
    CGROUP_VERSION_FIELD_NUMBER: _ClassVar[int]
    KERNEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    OPERATING_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    OS_TYPE_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    NCPU_FIELD_NUMBER: _ClassVar[int]
    MEM_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROOT_DIR_FIELD_NUMBER: _ClassVar[int]
    EXEC_ROOT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_TIME_FIELD_NUMBER: _ClassVar[int]
    INSECURE_REGISTRIES_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_MIRRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LOGGING_DRIVER_FIELD_NUMBER: _ClassVar[int]
    SECURITY_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PODS_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    SOCKET_FIELD_NUMBER: _ClassVar[int]
    DAEMON_PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    CPU_BUSY_NS_FIELD_NUMBER: _ClassVar[int]
    CPU_TOTAL_NS_FIELD_NUMBER: _ClassVar[int]
    MEM_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    containers: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    images: int
    storage_driver: str
    cgroup_driver: str
    cgroup_version: int
    kernel_version: str
    operating_system: str
    os_type: str
    architecture: str
    ncpu: int
    mem_total: int
    root_dir: str
    exec_root: str
    default_runtime: str
    runtimes: _containers.RepeatedScalarFieldContainer[str]
    server_version: str
    system_time: _timestamp_pb2.Timestamp
    insecure_registries: _containers.RepeatedScalarFieldContainer[str]
    registry_mirrors: _containers.ScalarMap[str, str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    logging_driver: str
    security_options: str
    pods: int
    volumes: int
    networks: int
    socket: str
    daemon_pid: int
    started_at: _timestamp_pb2.Timestamp
    cpu_busy_ns: int
    cpu_total_ns: int
    mem_available: int
    load_average: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., containers: _Optional[int] = ..., containers_running: _Optional[int] = ..., containers_paused: _Optional[int] = ..., containers_stopped: _Optional[int] = ..., images: _Optional[int] = ..., storage_driver: _Optional[str] = ..., cgroup_driver: _Optional[str] = ..., cgroup_version: _Optional[int] = ..., kernel_version: _Optional[str] = ..., operating_system: _Optional[str] = ..., os_type: _Optional[str] = ..., architecture: _Optional[str] = ..., ncpu: _Optional[int] = ..., mem_total: _Optional[int] = ..., root_dir: _Optional[str] = ..., exec_root: _Optional[str] = ..., default_runtime: _Optional[str] = ..., runtimes: _Optional[_Iterable[str]] = ..., server_version: _Optional[str] = ..., system_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., insecure_registries: _Optional[_Iterable[str]] = ..., registry_mirrors: _Optional[_Mapping[str, str]] = ..., warnings: _Optional[_Iterable[str]] = ..., logging_driver: _Optional[str] = ..., security_options: _Optional[str] = ..., pods: _Optional[int] = ..., volumes: _Optional[int] = ..., networks: _Optional[int] = ..., socket: _Optional[str] = ..., daemon_pid: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_busy_ns: _Optional[int] = ..., cpu_total_ns: _Optional[int] = ..., mem_available: _Optional[int] = ..., load_average: _Optional[_Iterable[float]] = ...) -> None: ...

class EventsRequest(_message.Message):
    __slots__ = ("since", "until", "filters")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("type", "action", "id", "attributes", "time", "seq")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    type: str
    action: str
    id: str
    attributes: _containers.ScalarMap[str, str]
    time: _timestamp_pb2.Timestamp
    seq: int
    def __init__(self, type: _Optional[str] = ..., action: _Optional[str] = ..., id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...

class DiskUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DiskUsageItem(_message.Message):
    __slots__ = ("type", "total", "active", "size", "reclaimable")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    RECLAIMABLE_FIELD_NUMBER: _ClassVar[int]
    type: str
    total: int
    active: int
    size: int
    reclaimable: int
    def __init__(self, type: _Optional[str] = ..., total: _Optional[int] = ..., active: _Optional[int] = ..., size: _Optional[int] = ..., reclaimable: _Optional[int] = ...) -> None: ...

class DiskUsageResponse(_message.Message):
    __slots__ = ("items", "images")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DiskUsageItem]
    images: _containers.RepeatedCompositeFieldContainer[ImageSummaryRef]
    def __init__(self, items: _Optional[_Iterable[_Union[DiskUsageItem, _Mapping]]] = ..., images: _Optional[_Iterable[_Union[ImageSummaryRef, _Mapping]]] = ...) -> None: ...

class ImageSummaryRef(_message.Message):
    __slots__ = ("id", "repo_tags", "size", "shared_size", "containers")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_TAGS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHARED_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo_tags: _containers.RepeatedScalarFieldContainer[str]
    size: int
    shared_size: int
    containers: int
    def __init__(self, id: _Optional[str] = ..., repo_tags: _Optional[_Iterable[str]] = ..., size: _Optional[int] = ..., shared_size: _Optional[int] = ..., containers: _Optional[int] = ...) -> None: ...

class SystemPruneRequest(_message.Message):
    __slots__ = ("all", "volumes", "filters")
    ALL_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    volumes: bool
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    def __init__(self, all: _Optional[bool] = ..., volumes: _Optional[bool] = ..., filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ...) -> None: ...

class SystemPruneResponse(_message.Message):
    __slots__ = ("containers_deleted", "images_deleted", "networks_deleted", "volumes_deleted", "space_reclaimed")
    CONTAINERS_DELETED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_DELETED_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_DELETED_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_DELETED_FIELD_NUMBER: _ClassVar[int]
    SPACE_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    containers_deleted: _containers.RepeatedScalarFieldContainer[str]
    images_deleted: _containers.RepeatedScalarFieldContainer[str]
    networks_deleted: _containers.RepeatedScalarFieldContainer[str]
    volumes_deleted: _containers.RepeatedScalarFieldContainer[str]
    space_reclaimed: int
    def __init__(self, containers_deleted: _Optional[_Iterable[str]] = ..., images_deleted: _Optional[_Iterable[str]] = ..., networks_deleted: _Optional[_Iterable[str]] = ..., volumes_deleted: _Optional[_Iterable[str]] = ..., space_reclaimed: _Optional[int] = ...) -> None: ...
