"""Installs every capture hook once, at app start."""

from __future__ import annotations

import logging

logger = logging.getLogger("kolo_django")
_installed = False


def install_hooks() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    from django.db.backends.signals import connection_created

    from . import frames, hooks, http, sql, writes

    connection_created.connect(sql.install_on_connection, dispatch_uid="kolo_django_sql")
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        sql.install_on_connection(connection=conn)
    for install in (
        hooks.install_orm,
        hooks.install_session,
        hooks.install_secrets,
        hooks.install_templates,
        hooks.install_mail,
        hooks.install_logging,
        hooks.install_exceptions,
        http.install_all,
        writes.install_writes,
        frames.install_sync_to_async,
    ):
        try:
            install()
        except Exception:
            logger.exception("kolo_django could not install %s", install.__name__)
