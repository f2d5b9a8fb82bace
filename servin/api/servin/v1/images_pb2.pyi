import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from servin.api.servin.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegistryAuth(_message.Message):
    __slots__ = ("username", "password", "identity_token", "registry_token")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    identity_token: str
    registry_token: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., identity_token: _Optional[str] = ..., registry_token: _Optional[str] = ...) -> None: ...

class PullImageRequest(_message.Message):
    __slots__ = ("reference", "platform", "auth", "all_tags")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    ALL_TAGS_FIELD_NUMBER: _ClassVar[int]
    reference: str
    platform: str
    auth: RegistryAuth
    all_tags: bool
    def __init__(self, reference: _Optional[str] = ..., platform: _Optional[str] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ..., all_tags: _Optional[bool] = ...) -> None: ...

class PushImageRequest(_message.Message):
    __slots__ = ("reference", "auth")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    reference: str
    auth: RegistryAuth
    def __init__(self, reference: _Optional[str] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class ImageProgress(_message.Message):
    __slots__ = ("progress", "status", "image_id", "digest", "references")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    status: str
    image_id: str
    digest: str
    references: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., status: _Optional[str] = ..., image_id: _Optional[str] = ..., digest: _Optional[str] = ..., references: _Optional[_Iterable[str]] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("all", "filters", "digests")
    ALL_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    digests: bool
    def __init__(self, all: _Optional[bool] = ..., filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ..., digests: _Optional[bool] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageSummary]
    def __init__(self, images: _Optional[_Iterable[_Union[ImageSummary, _Mapping]]] = ...) -> None: ...

class ImageSummary(_message.Message):
    __slots__ = ("id", "repo_tags", "repo_digests", "created", "size", "labels", "containers", "parent_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_TAGS_FIELD_NUMBER: _ClassVar[int]
    REPO_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo_tags: _containers.RepeatedScalarFieldContainer[str]
    repo_digests: _containers.RepeatedScalarFieldContainer[str]
    created: _timestamp_pb2.Timestamp
    size: int
    labels: _containers.ScalarMap[str, str]
    containers: int
    parent_id: str
    def __init__(self, id: _Optional[str] = ..., repo_tags: _Optional[_Iterable[str]] = ..., repo_digests: _Optional[_Iterable[str]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., containers: _Optional[int] = ..., parent_id: _Optional[str] = ...) -> None: ...

class InspectImageRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class ImageConfig(_message.Message):
    __slots__ = ("user", "env", "entrypoint", "cmd", "working_dir", "labels", "exposed_ports", "volumes", "stop_signal", "healthcheck", "shell", "args_escaped")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    CMD_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_PORTS_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    SHELL_FIELD_NUMBER: _ClassVar[int]
    ARGS_ESCAPED_FIELD_NUMBER: _ClassVar[int]
    user: str
    env: _containers.RepeatedScalarFieldContainer[str]
    entrypoint: _containers.RepeatedScalarFieldContainer[str]
    cmd: _containers.RepeatedScalarFieldContainer[str]
    working_dir: str
    labels: _containers.ScalarMap[str, str]
    exposed_ports: _containers.RepeatedScalarFieldContainer[str]
    volumes: _containers.RepeatedScalarFieldContainer[str]
    stop_signal: str
    healthcheck: _common_pb2.HealthConfig
    shell: _containers.RepeatedScalarFieldContainer[str]
    args_escaped: bool
    def __init__(self, user: _Optional[str] = ..., env: _Optional[_Iterable[str]] = ..., entrypoint: _Optional[_Iterable[str]] = ..., cmd: _Optional[_Iterable[str]] = ..., working_dir: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., exposed_ports: _Optional[_Iterable[str]] = ..., volumes: _Optional[_Iterable[str]] = ..., stop_signal: _Optional[str] = ..., healthcheck: _Optional[_Union[_common_pb2.HealthConfig, _Mapping]] = ..., shell: _Optional[_Iterable[str]] = ..., args_escaped: _Optional[bool] = ...) -> None: ...

class ImageLayer(_message.Message):
    __slots__ = ("digest", "diff_id", "media_type", "size")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIFF_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    digest: str
    diff_id: str
    media_type: str
    size: int
    def __init__(self, digest: _Optional[str] = ..., diff_id: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ImageDetail(_message.Message):
    __slots__ = ("id", "repo_tags", "repo_digests", "created", "author", "comment", "architecture", "os", "variant", "size", "config", "layers", "manifest_digest", "manifest_media_type", "parent_id", "raw_config", "document")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_TAGS_FIELD_NUMBER: _ClassVar[int]
    REPO_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    RAW_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo_tags: _containers.RepeatedScalarFieldContainer[str]
    repo_digests: _containers.RepeatedScalarFieldContainer[str]
    created: _timestamp_pb2.Timestamp
    author: str
    comment: str
    architecture: str
    os: str
    variant: str
    size: int
    config: ImageConfig
    layers: _containers.RepeatedCompositeFieldContainer[ImageLayer]
    manifest_digest: str
    manifest_media_type: str
    parent_id: str
    raw_config: bytes
    document: str
    def __init__(self, id: _Optional[str] = ..., repo_tags: _Optional[_Iterable[str]] = ..., repo_digests: _Optional[_Iterable[str]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., author: _Optional[str] = ..., comment: _Optional[str] = ..., architecture: _Optional[str] = ..., os: _Optional[str] = ..., variant: _Optional[str] = ..., size: _Optional[int] = ..., config: _Optional[_Union[ImageConfig, _Mapping]] = ..., layers: _Optional[_Iterable[_Union[ImageLayer, _Mapping]]] = ..., manifest_digest: _Optional[str] = ..., manifest_media_type: _Optional[str] = ..., parent_id: _Optional[str] = ..., raw_config: _Optional[bytes] = ..., document: _Optional[str] = ...) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("reference", "force", "no_prune")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    NO_PRUNE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    force: bool
    no_prune: bool
    def __init__(self, reference: _Optional[str] = ..., force: _Optional[bool] = ..., no_prune: _Optional[bool] = ...) -> None: ...

class RemoveImageResponse(_message.Message):
    __slots__ = ("untagged", "deleted")
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    untagged: _containers.RepeatedScalarFieldContainer[str]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, untagged: _Optional[_Iterable[str]] = ..., deleted: _Optional[_Iterable[str]] = ...) -> None: ...

class TagImageRequest(_message.Message):
    __slots__ = ("source", "target")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class TagImageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImageHistoryRequest(_message.Message):
    __slots__ = ("reference",)
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    def __init__(self, reference: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "created", "created_by", "size", "comment", "empty_layer")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EMPTY_LAYER_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: _timestamp_pb2.Timestamp
    created_by: str
    size: int
    comment: str
    empty_layer: bool
    def __init__(self, id: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., size: _Optional[int] = ..., comment: _Optional[str] = ..., empty_layer: _Optional[bool] = ...) -> None: ...

class ImageHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class ImportImageInput(_message.Message):
    __slots__ = ("reference", "changes", "message", "platform", "created", "data")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    reference: str
    changes: _containers.RepeatedScalarFieldContainer[str]
    message: str
    platform: str
    created: _timestamp_pb2.Timestamp
    data: bytes
    def __init__(self, reference: _Optional[str] = ..., changes: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., platform: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportImageResponse(_message.Message):
    __slots__ = ("image_id", "reference", "manifest_digest")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    reference: str
    manifest_digest: str
    def __init__(self, image_id: _Optional[str] = ..., reference: _Optional[str] = ..., manifest_digest: _Optional[str] = ...) -> None: ...

class LoadImageInput(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class SaveImagesRequest(_message.Message):
    __slots__ = ("references", "format")
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    references: _containers.RepeatedScalarFieldContainer[str]
    format: str
    def __init__(self, references: _Optional[_Iterable[str]] = ..., format: _Optional[str] = ...) -> None: ...

class PruneImagesRequest(_message.Message):
    __slots__ = ("all", "filters")
    ALL_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    all: bool
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    def __init__(self, all: _Optional[bool] = ..., filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ...) -> None: ...

class PruneImagesResponse(_message.Message):
    __slots__ = ("deleted", "untagged", "space_reclaimed")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    SPACE_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    untagged: _containers.RepeatedScalarFieldContainer[str]
    space_reclaimed: int
    def __init__(self, deleted: _Optional[_Iterable[str]] = ..., untagged: _Optional[_Iterable[str]] = ..., space_reclaimed: _Optional[int] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("server", "auth")
    SERVER_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    server: str
    auth: RegistryAuth
    def __init__(self, server: _Optional[str] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("status", "identity_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: str
    identity_token: str
    def __init__(self, status: _Optional[str] = ..., identity_token: _Optional[str] = ...) -> None: ...

class BuildInput(_message.Message):
    __slots__ = ("options", "data")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    options: BuildOptions
    data: bytes
    def __init__(self, options: _Optional[_Union[BuildOptions, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class BuildOptions(_message.Message):
    __slots__ = ("dockerfile", "dockerfile_path", "tags", "build_args", "target", "no_cache", "pull", "cache_from", "labels", "platform", "network", "extra_hosts", "secrets", "output", "context_trimmed", "dockerignore", "resources", "shm_size", "ulimits")
    DOCKERFILE_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_PATH_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    CACHE_FROM_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HOSTS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TRIMMED_FIELD_NUMBER: _ClassVar[int]
    DOCKERIGNORE_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SHM_SIZE_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    dockerfile: bytes
    dockerfile_path: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    build_args: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyValue]
    target: str
    no_cache: bool
    pull: bool
    cache_from: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyValue]
    platform: str
    network: str
    extra_hosts: _containers.RepeatedScalarFieldContainer[str]
    secrets: _containers.RepeatedCompositeFieldContainer[BuildSecret]
    output: str
    context_trimmed: bool
    dockerignore: _containers.RepeatedScalarFieldContainer[str]
    resources: _common_pb2.Resources
    shm_size: int
    ulimits: _containers.RepeatedCompositeFieldContainer[BuildUlimit]
    def __init__(self, dockerfile: _Optional[bytes] = ..., dockerfile_path: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., build_args: _Optional[_Iterable[_Union[_common_pb2.KeyValue, _Mapping]]] = ..., target: _Optional[str] = ..., no_cache: _Optional[bool] = ..., pull: _Optional[bool] = ..., cache_from: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[_Union[_common_pb2.KeyValue, _Mapping]]] = ..., platform: _Optional[str] = ..., network: _Optional[str] = ..., extra_hosts: _Optional[_Iterable[str]] = ..., secrets: _Optional[_Iterable[_Union[BuildSecret, _Mapping]]] = ..., output: _Optional[str] = ..., context_trimmed: _Optional[bool] = ..., dockerignore: _Optional[_Iterable[str]] = ..., resources: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., shm_size: _Optional[int] = ..., ulimits: _Optional[_Iterable[_Union[BuildUlimit, _Mapping]]] = ...) -> None: ...

class BuildSecret(_message.Message):
    __slots__ = ("id", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    data: bytes
    def __init__(self, id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class BuildUlimit(_message.Message):
    __slots__ = ("name", "soft", "hard")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft: int
    hard: int
    def __init__(self, name: _Optional[str] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class BuildStepStarted(_message.Message):
    __slots__ = ("vertex", "stage", "index", "count", "number", "total", "instruction", "keyword")
    VERTEX_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    vertex: int
    stage: str
    index: int
    count: int
    number: int
    total: int
    instruction: str
    keyword: str
    def __init__(self, vertex: _Optional[int] = ..., stage: _Optional[str] = ..., index: _Optional[int] = ..., count: _Optional[int] = ..., number: _Optional[int] = ..., total: _Optional[int] = ..., instruction: _Optional[str] = ..., keyword: _Optional[str] = ...) -> None: ...

class BuildStepDone(_message.Message):
    __slots__ = ("vertex", "cached", "image_id", "seconds", "container_id")
    VERTEX_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    vertex: int
    cached: bool
    image_id: str
    seconds: float
    container_id: str
    def __init__(self, vertex: _Optional[int] = ..., cached: _Optional[bool] = ..., image_id: _Optional[str] = ..., seconds: _Optional[float] = ..., container_id: _Optional[str] = ...) -> None: ...

class BuildStepFailed(_message.Message):
    __slots__ = ("vertex", "message", "command", "exit_code", "has_exit_code")
    VERTEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    vertex: int
    message: str
    command: str
    exit_code: int
    has_exit_code: bool
    def __init__(self, vertex: _Optional[int] = ..., message: _Optional[str] = ..., command: _Optional[str] = ..., exit_code: _Optional[int] = ..., has_exit_code: _Optional[bool] = ...) -> None: ...

class BuildResult(_message.Message):
    __slots__ = ("image_id", "tags", "recorded")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    recorded: bool
    def __init__(self, image_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., recorded: _Optional[bool] = ...) -> None: ...

class BuildProgress(_message.Message):
    __slots__ = ("started", "done", "failed", "result", "message", "warning", "context_bytes", "context_size", "output_data", "vertex", "container_id", "data", "stream")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SIZE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    VERTEX_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    started: BuildStepStarted
    done: BuildStepDone
    failed: BuildStepFailed
    result: BuildResult
    message: str
    warning: str
    context_bytes: int
    context_size: int
    output_data: bytes
    vertex: int
    container_id: str
    data: bytes
    stream: int
    def __init__(self, started: _Optional[_Union[BuildStepStarted, _Mapping]] = ..., done: _Optional[_Union[BuildStepDone, _Mapping]] = ..., failed: _Optional[_Union[BuildStepFailed, _Mapping]] = ..., result: _Optional[_Union[BuildResult, _Mapping]] = ..., message: _Optional[str] = ..., warning: _Optional[str] = ..., context_bytes: _Optional[int] = ..., context_size: _Optional[int] = ..., output_data: _Optional[bytes] = ..., vertex: _Optional[int] = ..., container_id: _Optional[str] = ..., data: _Optional[bytes] = ..., stream: _Optional[int] = ...) -> None: ...

class PruneBuildCacheRequest(_message.Message):
    __slots__ = ("unused_for_ns",)
    UNUSED_FOR_NS_FIELD_NUMBER: _ClassVar[int]
    unused_for_ns: int
    def __init__(self, unused_for_ns: _Optional[int] = ...) -> None: ...

class PruneBuildCacheResponse(_message.Message):
    __slots__ = ("entries", "space_reclaimed")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SPACE_RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    entries: int
    space_reclaimed: int
    def __init__(self, entries: _Optional[int] = ..., space_reclaimed: _Optional[int] = ...) -> None: ...

class SearchImagesRequest(_message.Message):
    __slots__ = ("term", "limit", "auth")
    TERM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    term: str
    limit: int
    auth: RegistryAuth
    def __init__(self, term: _Optional[str] = ..., limit: _Optional[int] = ..., auth: _Optional[_Union[RegistryAuth, _Mapping]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("name", "description", "star_count", "is_official")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    IS_OFFICIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    star_count: int
    is_official: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., star_count: _Optional[int] = ..., is_official: _Optional[bool] = ...) -> None: ...

class SearchImagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ...) -> None: ...
