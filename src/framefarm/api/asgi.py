"""The API as an ASGI application for a process manager that runs several API processes
on one socket, each with its own interpreter (and so its own GIL):

    framefarm migrate
    uvicorn --factory framefarm.api.asgi:create --host 0.0.0.0 --port 8700 --workers 4

Every process builds its application from the ``FRAMEFARM_*`` environment, as
``framefarm serve`` does, but starts no render node and creates no tenant (``framefarm
admin create-tenant``). PostgreSQL only: live events cross processes by LISTEN/NOTIFY,
while on SQLite a commit signals the streams of its own process alone (docs/deployment.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from framefarm import logs
from framefarm.api.app import create_app
from framefarm.settings import Settings


def create() -> FastAPI:
    settings = Settings()
    if not settings.db_url.startswith("postgresql"):
        raise RuntimeError("several API processes need PostgreSQL (FRAMEFARM_DATABASE_URL); "
                           "with SQLite run one process: framefarm serve")
    logs.setup(settings.log_json)
    return create_app(settings)
