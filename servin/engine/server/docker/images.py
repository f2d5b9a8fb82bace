"""Docker API image endpoints: list, inspect, history, pull and import, push, tag, remove,
search, prune, save, load and commit, over the core's ``ImageService`` (and ``files.commit``).

Answers in docker's shapes for API 1.24 to 1.50: dangling images list as
``<none>:<none>`` before 1.44, ``VirtualSize`` goes from 1.44, names are docker's familiar
forms (``busybox:latest``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator
from typing import Any, cast

from servin.engine.engine import CoreAPI
from servin.engine.images.archive.load import LoadEvent
from servin.engine.images.progress import ProgressEvent
from servin.engine.images.pull import PullResult
from servin.engine.images.push import PushResult
from servin.engine.images.store import ImageRecord
from servin.engine.semantics import filters as docker_filters
from servin.engine.semantics.inspect import image_document
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.progress import stream_operation
from servin.engine.server.docker.responses import json_response
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.streams import JSONMessages, progress_text
from servin.engine.server.docker.versions import compare_versions
from servin.engine.timefmt import parse_ns_or_zero
from servin.errors import InvalidArgument, NotFound
from servin.reference import familiar, parse_reference

TAR = "application/x-tar"
_PULLING = re.compile(r"^(\S+): (Pulling from .+)$")
_DIGEST_TAG = re.compile(r"^[a-z0-9]+:[0-9a-f]{32,}$")


def _older(req: Request, version: str) -> bool:
    return compare_versions(req.api_version, version) < 0


def _created(record: ImageRecord) -> int:
    return parse_ns_or_zero(record.created) // 1_000_000_000


def image_reference(image: str, tag: str) -> str:
    """docker's ``fromImage`` + ``tag`` (a digest in ``tag`` pins it: ``@sha256:...``)."""
    if not image:
        raise InvalidArgument("no image name given")
    if not tag:
        return image
    ref = parse_reference(image, default_tag=False)
    if ref.tag or ref.digest:
        # The CLI puts the tag in fromImage already and may repeat it: the name's one wins
        # only if they agree.
        if ref.tag != tag and ref.digest != tag:
            raise InvalidArgument(f"invalid reference: {image} already has a tag or digest")
        return image
    return f"{image}@{tag}" if _DIGEST_TAG.match(tag) else f"{image}:{tag}"


def summary(record: ImageRecord, req: Request) -> dict[str, Any]:
    """One entry of ``GET /images/json``."""
    tags = [familiar(t) for t in record.repo_tags]
    digests = [familiar(d) for d in record.repo_digests]
    if _older(req, "1.44"):
        tags = tags or ["<none>:<none>"]
        digests = digests or ["<none>@<none>"]
    out: dict[str, Any] = {
        "Containers": -1,
        "Created": _created(record),
        "Id": record.id,
        "Labels": record.labels or None,
        "ParentId": "",
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": -1,
        "Size": record.size,
    }
    if _older(req, "1.44"):
        out["VirtualSize"] = record.size
    return out


def _pull_message(event: ProgressEvent) -> dict[str, Any]:
    """A pull/push ProgressEvent as docker's JSON message."""
    if not event.id:
        m = _PULLING.match(event.status)
        if m:
            # dockerd names the repository's path: "Pulling from library/busybox".
            repository = m.group(2).removeprefix("Pulling from ")
            with contextlib.suppress(InvalidArgument):
                repository = parse_reference(repository, default_tag=False).path
            return {"status": f"Pulling from {repository}", "id": m.group(1)}
        return {"status": event.status}
    return _layer_message(event.action, event.id, event.current, event.total, event.done)


def _layer_message(status: str, id: str, current: int, total: int, done: bool
                   ) -> dict[str, Any]:
    message: dict[str, Any] = {"status": status, "progressDetail": {}}
    if not done and status in ("Downloading", "Extracting", "Pushing", "Loading layer"):
        detail: dict[str, int] = {}
        if current:
            detail["current"] = current
        if total:
            detail["total"] = total
        message["progressDetail"] = detail
        text = progress_text(current, total)
        if text:
            message["progress"] = text
    message["id"] = id
    return message


class ImageRoutes:
    """The image endpoints over the core's API."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core
        self.images = core.images

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("GET", "/images/json", self.listing)
        router.add("POST", "/images/create", self.create)
        router.add("POST", "/images/load", self.load)
        router.add("GET", "/images/get", self.save_many)
        router.add("GET", "/images/search", self.search)
        router.add("POST", "/images/prune", self.prune)
        router.add("POST", "/commit", self.commit)
        router.add("GET", "/images/{name:path}/json", self.inspect)
        router.add("GET", "/images/{name:path}/history", self.history)
        router.add("GET", "/images/{name:path}/get", self.save_one)
        router.add("POST", "/images/{name:path}/push", self.push)
        router.add("POST", "/images/{name:path}/tag", self.tag)
        router.add("DELETE", "/images/{name:path}", self.remove)

    # -- queries ---------------------------------------------------------------------------

    async def listing(self, req: Request) -> Response:
        """``GET /images/json``: every image (``all`` changes nothing: there are no
        intermediate layers as images here), docker's filters; ``digests`` is for the CLI's
        columns (RepoDigests are always given, as dockerd)."""
        wanted = params.filters(req)
        legacy = req.query_value("filter")  # API < 1.41: a reference pattern
        if legacy:
            wanted.setdefault("reference", []).append(legacy)
        records = await self.images.list(wanted)
        return json_response([summary(r, req) for r in records])

    async def inspect(self, req: Request) -> Response:
        """``GET /images/{name}/json``: docker's ImageInspect."""
        details = await self.images.inspect(req.params["name"])
        doc = image_document(details)
        if _older(req, "1.44"):
            doc["VirtualSize"] = doc["Size"]
            doc["Container"] = ""
            doc["ContainerConfig"] = {**doc["Config"]}
        return json_response(doc)

    async def history(self, req: Request) -> Response:
        """``GET /images/{name}/history``: newest step first, the tags on the newest."""
        name = req.params["name"]
        record = await self.images.get(name)
        entries = await self.images.history(name)
        out = []
        for i, e in enumerate(entries):
            out.append({
                "Comment": e.comment,
                "Created": parse_ns_or_zero(e.created) // 1_000_000_000,
                "CreatedBy": e.created_by,
                "Id": e.id,
                "Size": e.size,
                "Tags": [familiar(t) for t in record.repo_tags] if i == 0 else None,
            })
        return json_response(out)

    async def search(self, req: Request) -> Response:
        """``GET /images/search``: a registry's repositories matching ``term``."""
        term = req.query_value("term")
        if not term:
            raise InvalidArgument("no search term given")
        limit = params.int_value(req, "limit", 25)
        if not 1 <= limit <= 100:
            raise InvalidArgument(f"invalid limit {limit}: must be between 1 and 100")
        wanted = params.filters(req, {"is-official", "is-automated", "stars"})
        found = await self.images.search(term, params.registry_auth(req).credentials(), limit)
        stars = max((int(v) for v in wanted.get("stars", []) if v.isdigit()), default=0)
        out = []
        for r in found:
            if r.stars < stars:
                continue
            if "is-official" in wanted and docker_filters.parse_bool(
                    "is-official", wanted["is-official"]) != r.official:
                continue
            if "is-automated" in wanted and docker_filters.parse_bool(
                    "is-automated", wanted["is-automated"]):
                continue  # no automated builds here
            out.append({"name": r.name, "description": r.description,
                        "star_count": r.stars, "is_official": r.official,
                        "is_automated": False})
        return json_response(out)

    # -- pull and import -------------------------------------------------------------------

    async def create(self, req: Request) -> Response | None:
        """``POST /images/create``: pull ``fromImage`` (+ ``tag``), or import ``fromSrc``."""
        if req.query_value("fromSrc"):
            return await self._import(req)
        image = req.query_value("fromImage")
        reference = image_reference(image, req.query_value("tag"))
        parse_reference(reference)  # a bad name fails before any network work
        creds = params.registry_auth(req).credentials()
        platform = req.query_value("platform")
        images = self.images

        async def run(report: Any) -> PullResult:
            return await images.pull(reference, platform=platform, creds=creds, report=report)

        async def event(out: JSONMessages, e: ProgressEvent) -> None:
            await out.send(_pull_message(e))

        async def result(out: JSONMessages, r: PullResult) -> None:
            return None  # the engine's closing lines (Digest, Status) were events

        # "Pulling from" is said before the registry answers: a missing image is a 404.
        await stream_operation(req, run, event, result, hold=2)
        return None

    async def _import(self, req: Request) -> Response | None:
        source = req.query_value("fromSrc")
        if source != "-":
            raise InvalidArgument(
                "importing from a URL is not supported: send the archive in the body "
                "(fromSrc=-)")
        repo, tag = req.query_value("repo"), req.query_value("tag")
        reference = image_reference(repo, tag) if repo else ""
        record = await self.images.import_rootfs(
            req.chunks(), reference=reference, changes=req.query.get("changes", []),
            comment=req.query_value("message"), platform=req.query_value("platform"))
        out = JSONMessages((await req.stream(200, "application/json")).write)
        await out.status(record.id)
        return None

    # -- push --------------------------------------------------------------------------------

    async def push(self, req: Request) -> Response | None:
        """``POST /images/{name}/push``: the named tag, or every tag of the repository when
        neither the name nor ``tag`` has one (docker's ``push --all-tags``)."""
        name, tag = req.params["name"], req.query_value("tag")
        ref = parse_reference(name, default_tag=False)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        if tag:
            references = [image_reference(name, tag)]
        elif ref.tag:
            references = [name]
        else:
            records = await self.images.list({})
            references = sorted({t for r in records for t in r.repo_tags
                                 if parse_reference(t).repository == ref.repository})
            if not references:
                raise NotFound(f"An image does not exist locally with the tag: "
                               f"{ref.familiar_repository}")
        creds = params.registry_auth(req).credentials()
        images = self.images

        async def run(report: Any) -> list[PushResult]:
            results = []
            for reference in references:
                results.append(await images.push(reference, creds=creds, report=report))
            return results

        async def event(out: JSONMessages, e: ProgressEvent) -> None:
            await out.send(_pull_message(e))

        async def result(out: JSONMessages, results: list[PushResult]) -> None:
            for r in results:
                pushed = parse_reference(r.reference)
                await out.send({"progressDetail": {},
                                "aux": {"Tag": pushed.tag or "", "Digest": r.digest,
                                        "Size": r.size}})

        await stream_operation(req, run, event, result)
        return None

    # -- tag and remove ----------------------------------------------------------------------

    async def tag(self, req: Request) -> Response:
        """``POST /images/{name}/tag?repo=&tag=``: 201 Created."""
        repo, tag = req.query_value("repo"), req.query_value("tag")
        if not repo:
            raise InvalidArgument("repository name (repo) is required")
        target = parse_reference(repo, default_tag=False)
        if target.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag and target.tag:
            raise InvalidArgument(f"invalid reference: {repo} already has a tag")
        await self.images.tag(req.params["name"], f"{repo}:{tag}" if tag else repo)
        return Response(201)

    async def remove(self, req: Request) -> Response:
        """``DELETE /images/{name}``: docker's list of ``Untagged`` and ``Deleted``."""
        untagged, deleted = await self.images.remove(req.params["name"],
                                                     force=params.bool_value(req, "force"))
        return json_response([*({"Untagged": familiar(n)} for n in untagged),
                              *({"Deleted": d} for d in deleted)])

    async def prune(self, req: Request) -> Response:
        """``POST /images/prune``: dangling images (every unused one with
        ``dangling=false``)."""
        report = await self.images.prune(filters=params.filters(req))
        items = [*({"Untagged": familiar(n)} for n in report.untagged),
                 *({"Deleted": d} for d in report.deleted)]
        return json_response({"ImagesDeleted": items or None,
                              "SpaceReclaimed": report.reclaimed})

    # -- save and load -----------------------------------------------------------------------

    async def save_one(self, req: Request) -> Response | None:
        """``GET /images/{name}/get``: one image as a docker-archive tarball."""
        return await self._save(req, [req.params["name"]])

    async def save_many(self, req: Request) -> Response | None:
        """``GET /images/get?names=a&names=b``: several images in one tarball."""
        names = [n for value in req.query.get("names", []) for n in value.split(",") if n]
        return await self._save(req, names)

    async def _save(self, req: Request, names: list[str]) -> Response | None:
        if not names:
            raise InvalidArgument("no image names given")
        # An async generator: closed below whatever happens to the response.
        chunks = cast(AsyncGenerator[bytes, None], self.images.save(names, "docker-archive"))
        try:
            first = await anext(chunks)  # a missing image fails before the response starts
        except StopAsyncIteration:
            first = b""
        try:
            out = await req.stream(200, TAR)
            if first:
                await out.write(first)
            async for chunk in chunks:
                await out.write(chunk)
        finally:
            await chunks.aclose()
        return None

    async def load(self, req: Request) -> Response | None:
        """``POST /images/load``: a docker-archive or OCI layout tarball in the body;
        ``Loaded image: NAME`` lines (and per-file progress unless ``quiet``)."""
        quiet = params.bool_value(req, "quiet")
        images = self.images
        chunks = req.chunks()

        async def run(report: Any) -> None:
            async for e in images.load(chunks):
                report(e)

        async def event(out: JSONMessages, e: LoadEvent) -> None:
            if e.action == "Loaded":
                names = [familiar(n) for n in e.names]
                for line in ([f"Loaded image: {n}" for n in names]
                             or [f"Loaded image ID: {e.item}"]):
                    await out.stream(line + "\n")
            elif not quiet and e.action == "Loading":
                ident = e.item.rsplit("/", 1)[-1].removesuffix(".tar")[:12]
                await out.send(_layer_message("Loading layer", ident, e.size, e.size, True))

        async def result(out: JSONMessages, _: None) -> None:
            return None

        await stream_operation(req, run, event, result)
        return None

    # -- commit ------------------------------------------------------------------------------

    async def commit(self, req: Request) -> Response:
        """``POST /commit?container=&repo=&tag=``: a new image from a container's changes;
        the body's Config fields become Dockerfile changes, as dockerd merges them."""
        container = req.query_value("container")
        if not container:
            raise InvalidArgument("no container given")
        repo, tag = req.query_value("repo"), req.query_value("tag")
        reference = image_reference(repo, tag) if repo else ""
        body = await params.read_json(req, default=None, check_type=False)
        changes = [*req.query.get("changes", []), *config_changes(body)]
        record = await self.core.files.commit(
            container, reference, comment=req.query_value("comment"),
            author=req.query_value("author"), changes=changes,
            pause=params.bool_value(req, "pause", True))
        return json_response({"Id": record.id}, 201)


def config_changes(body: Any) -> list[str]:
    """The fields of a commit's Config body as Dockerfile instructions (JSON forms)."""
    if body is None:
        return []
    if not isinstance(body, dict):
        raise InvalidArgument("invalid commit config: expected a JSON object")
    out: list[str] = []

    def strings(key: str) -> list[str] | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"invalid commit config: {key} must be a list of strings")
        return value

    if (cmd := strings("Cmd")) is not None and cmd:
        out.append("CMD " + json.dumps(cmd))
    if (entrypoint := strings("Entrypoint")) is not None and entrypoint:
        out.append("ENTRYPOINT " + json.dumps(entrypoint))
    for item in strings("Env") or []:
        key, sep, value = item.partition("=")
        if sep:
            out.append(f"ENV {key}={json.dumps(value)}")
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise InvalidArgument("invalid commit config: Labels must be an object")
    for key, value in labels.items():
        out.append(f"LABEL {json.dumps(str(key))}={json.dumps(str(value))}")
    for port in body.get("ExposedPorts") or {}:
        out.append(f"EXPOSE {port}")
    for volume in body.get("Volumes") or {}:
        out.append("VOLUME " + json.dumps([volume]))
    for key, instruction in (("User", "USER"), ("WorkingDir", "WORKDIR"),
                             ("StopSignal", "STOPSIGNAL")):
        field = body.get(key)
        if field:
            if not isinstance(field, str):
                raise InvalidArgument(f"invalid commit config: {key} must be a string")
            out.append(f"{instruction} {field}")
    return out


