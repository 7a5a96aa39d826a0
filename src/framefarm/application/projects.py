"""Projects, their assets (uploaded once, content-addressed) and templates."""

from __future__ import annotations

import dataclasses
import mimetypes
import posixpath
import re
import time
from collections.abc import Sequence
from typing import IO, Any

import pydantic

from framefarm import errors
from framefarm.application import usage
from framefarm.application.context import Context, Download, blob_key, download
from framefarm.document import loader, models
from framefarm.queue.errors import Conflict, StorageFull
from framefarm.records import Asset, Export, Project, Template
from framefarm.repos import jobs, projects

_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,120}$")


class InvalidAssetName(ValueError):
    """An asset name that is absolute, too deep, or uses odd characters."""


def asset_name(raw: str) -> str:
    """A safe relative asset name: folders allowed, no '..', no absolute paths, no odd
    characters."""
    name = raw.replace("\\", "/").strip()
    if name.startswith("/"):
        raise InvalidAssetName(f"asset name {raw!r} is absolute; give a name relative to the "
                               "project")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or len(parts) > 4:
        raise InvalidAssetName(f"asset name {raw!r} is empty or too deep")
    for part in parts:
        if part == ".." or not _NAME_PART.match(part):
            raise InvalidAssetName(f"asset name {raw!r}: use letters, digits, '.', '_' and "
                                   "'-' in up to 4 folders; no '..'")
    return "/".join(parts)


@dataclasses.dataclass(frozen=True)
class Upload:
    name: str
    stream: IO[bytes]


@dataclasses.dataclass(frozen=True)
class StoredAsset:
    name: str
    sha256: str
    size: int


def template_variables(document: Any) -> dict[str, Any]:
    """A template's declared variables, each checked against the model."""
    declared = document.get("variables") if isinstance(document, dict) else None
    declared = declared or {}
    if not isinstance(declared, dict):
        raise errors.DocumentError("variables: expected an object of name -> definition")
    found, problems = {}, []
    for name, spec in declared.items():
        try:
            found[name] = models.Variable.model_validate(spec).model_dump()
        except pydantic.ValidationError as exc:
            problems += [loader.format_error({**e, "loc": ("variables", name, *e["loc"])})
                         for e in exc.errors()]
    if problems:
        raise errors.DocumentError("the template's variables are invalid", problems)
    return found


@dataclasses.dataclass
class Projects:
    ctx: Context

    def create(self, tenant_id: str, name: str) -> Project:
        with self.ctx.db.tx() as conn:
            return projects.create(conn, tenant_id, name, now=self.ctx.now())

    def all(self, tenant_id: str) -> list[Project]:
        with self.ctx.db.read() as conn:
            return projects.list_for(conn, tenant_id)

    def get(self, tenant_id: str, project_id: str) -> tuple[Project, list[Asset]]:
        with self.ctx.db.read() as conn:
            return (projects.get(conn, tenant_id, project_id),
                    projects.assets(conn, tenant_id, project_id))

    def rename(self, tenant_id: str, project_id: str, name: str) -> Project:
        with self.ctx.db.tx() as conn:
            return projects.rename(conn, tenant_id, project_id, name, now=self.ctx.now())

    def delete(self, tenant_id: str, project_id: str) -> None:
        """Delete the project with its assets and templates; refused (Conflict) while one of
        its renders is queued or running. Its finished renders and their exports stay (they
        are the tenant's history; a render carries its own copy of the document and of the
        asset list). The asset contents are left to the storage sweeper, which deletes
        them once no project's asset and no unfinished job uses them."""
        with self.ctx.db.tx() as conn:
            projects.get(conn, tenant_id, project_id)
            busy = jobs.count_unfinished_of_project(conn, tenant_id, project_id)
            if busy:
                raise Conflict(
                    f"project {project_id} has {busy} render{'s' if busy > 1 else ''} queued "
                    "or running; cancel them or wait until they finish, then delete it")
            projects.delete(conn, tenant_id, project_id)

    def exports(self, tenant_id: str, project_id: str) -> list[Export]:
        with self.ctx.db.read() as conn:
            return projects.exports(conn, tenant_id, project_id)

    def put_document(self, tenant_id: str, project_id: str, document: dict[str, Any]) -> None:
        """Store the project's document. Its structure is checked now (templates may stay
        unfilled); its assets are checked when it is rendered."""
        with self.ctx.db.read() as conn:
            projects.get(conn, tenant_id, project_id)
        if not document.get("variables"):
            loader.validate(document)
        with self.ctx.db.tx() as conn:
            projects.put_document(conn, tenant_id, project_id, document, now=self.ctx.now())

    def upload(self, tenant_id: str, project_id: str,
               uploads: Sequence[Upload]) -> list[StoredAsset]:
        """Store each file once by its SHA-256 and name it in the project; every name was
        checked by the caller (:func:`asset_name`) before anything is stored."""
        with self.ctx.db.read() as conn:
            projects.get(conn, tenant_id, project_id)
        storage = self.ctx.storage
        stored = []
        for upload in uploads:
            staging = f"uploads/{time.monotonic_ns()}"
            size, sha = storage.put_stream(staging, upload.stream,
                                           self.ctx.settings.max_upload_bytes)
            # The plan's storage: checked before the content is kept (a refused upload
            # leaves nothing), and again under the tenant's lock with the asset's row.
            replacing = (project_id, upload.name)
            try:
                with self.ctx.db.read() as conn:
                    usage.check_storage(conn, tenant_id, upload.name, size,
                                        now=self.ctx.now(), replacing=replacing)
            except StorageFull:
                storage.delete(staging)
                raise
            # Always put the content in place, even when the same content is stored:
            # the fresh copy is young, so the sweeper's age guard cannot take it away
            # between now and the asset row that points at it.
            storage.rename(staging, blob_key(sha))
            with self.ctx.db.tx() as conn:
                usage.check_storage(conn, tenant_id, upload.name, size, now=self.ctx.now(),
                                    replacing=replacing, lock=True)
                projects.put_asset(conn, tenant_id, project_id, upload.name, sha, size,
                                   now=self.ctx.now())
            stored.append(StoredAsset(upload.name, sha, size))
        return stored

    def assets(self, tenant_id: str, project_id: str) -> list[Asset]:
        with self.ctx.db.read() as conn:
            return projects.assets(conn, tenant_id, project_id)

    def asset_map(self, tenant_id: str, project_id: str | None) -> dict[str, str]:
        """name -> sha256 of every asset of the project (none without one)."""
        if project_id is None:
            return {}
        return {a.name: a.sha256 for a in self.assets(tenant_id, project_id)}

    def asset_file(self, tenant_id: str, project_id: str, name: str) -> Download:
        """The asset's content, typed by its name's suffix (as it was uploaded: the server
        keeps no content type)."""
        with self.ctx.db.read() as conn:
            row = projects.get_asset(conn, tenant_id, project_id, name)
        media, _ = mimetypes.guess_type(row.name, strict=False)
        return download(self.ctx, blob_key(row.sha256), media or "application/octet-stream",
                        posixpath.basename(row.name))

    def delete_asset(self, tenant_id: str, project_id: str, name: str) -> None:
        with self.ctx.db.tx() as conn:
            projects.delete_asset(conn, tenant_id, project_id, name)

    # -- templates --------------------------------------------------------------------------

    def create_template(self, tenant_id: str, name: str, document: dict[str, Any],
                        project_id: str | None) -> Template:
        """Save a document with variables as a template (its variables are checked now)."""
        if project_id is not None:  # "" is a project that does not exist, not no project
            with self.ctx.db.read() as conn:
                projects.get(conn, tenant_id, project_id)
        template_variables(document)
        with self.ctx.db.tx() as conn:
            return projects.create_template(conn, tenant_id, name, document, project_id,
                                            now=self.ctx.now())

    def update_template(self, tenant_id: str, template_id: str, *, name: str | None = None,
                        document: dict[str, Any] | None = None) -> Template:
        """A new name and/or document (its variables checked as at create)."""
        if document is not None:
            template_variables(document)
        with self.ctx.db.tx() as conn:
            return projects.update_template(conn, tenant_id, template_id, name=name,
                                            document=document)

    def delete_template(self, tenant_id: str, template_id: str) -> None:
        with self.ctx.db.tx() as conn:
            projects.delete_template(conn, tenant_id, template_id)

    def templates(self, tenant_id: str) -> list[Template]:
        with self.ctx.db.read() as conn:
            return projects.templates(conn, tenant_id)

    def template(self, tenant_id: str, template_id: str) -> Template:
        with self.ctx.db.read() as conn:
            return projects.get_template(conn, tenant_id, template_id)
