from __future__ import annotations

from django.apps import AppConfig


class KoloDjangoConfig(AppConfig):
    name = "kolo_django"
    label = "kolo_django"
    verbose_name = "Kolo traces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .recording import install

        install.install_hooks()
        from . import storage

        storage.install_sigterm_flush()
