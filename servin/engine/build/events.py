"""What a build reports while it runs; each front door renders these its own way.

``BuildService.build`` yields them in order: ``ContextReceived`` while the context arrives,
then per step ``StepStarted``, perhaps ``StepRunning`` and ``StepOutput`` (a RUN step's
container and its output), and ``StepDone`` or ``StepFailed``; ``Message`` for notes and
warnings; ``OutputData`` chunks with ``BuildOptions.output == "tar"``; finally one
``BuildResult``. Steps of stages that run at the same time interleave; ``vertex`` tells
them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from servin.errors import InvalidArgument


class StepError(InvalidArgument):
    """A step failed (a RUN's command exited non-zero, a COPY source is missing, ...)."""


@dataclass(frozen=True)
class StepStarted:
    """A step begins. ``vertex`` numbers steps as they start; ``index``/``count`` count the
    stage's steps (1-based), ``number``/``total`` the build's (docker's ``Step N/M``)."""

    vertex: int
    stage: str
    index: int
    count: int
    number: int
    total: int
    instruction: str  # as it runs: "RUN make" (after substitution where docker shows it)
    keyword: str


@dataclass(frozen=True)
class StepRunning:
    """A RUN step's container started."""

    vertex: int
    container_id: str


@dataclass(frozen=True)
class StepOutput:
    """Output of a RUN step's command."""

    vertex: int
    data: bytes
    stream: int  # 1 stdout, 2 stderr


@dataclass(frozen=True)
class StepDone:
    """A step ended well."""

    vertex: int
    cached: bool
    image_id: str  # the ID the state after the step has as an image
    seconds: float
    container_id: str = ""


@dataclass(frozen=True)
class StepFailed:
    """A step failed; the build raises a ServinError right after this event."""

    vertex: int
    message: str
    command: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Message:
    """A note (``info``) or a warning (``warning``) for the user."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class ContextReceived:
    """Bytes of context received so far; ``done`` with the unpacked context's size."""

    bytes: int
    done: bool = False


@dataclass(frozen=True)
class OutputData:
    """A chunk of the result's files as a tar stream (``output == "tar"``)."""

    data: bytes


@dataclass(frozen=True)
class BuildResult:
    """The build's result: the image (recorded unless ``output`` was given) and its tags."""

    image_id: str
    tags: list[str]
    recorded: bool = True


BuildEvent = (StepStarted | StepRunning | StepOutput | StepDone | StepFailed | Message
              | ContextReceived | OutputData | BuildResult)
