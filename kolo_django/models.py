from __future__ import annotations

from typing import Any

from django.db import models

from . import trace


class Trace(models.Model):
    """One recorded request. The summary columns serve listings without
    loading the compressed document."""

    id = models.CharField(primary_key=True, max_length=30, editable=False)
    created_at = models.DateTimeField(db_index=True)
    method = models.CharField(max_length=10, db_index=True)
    path = models.CharField(max_length=1024)
    status_code = models.PositiveSmallIntegerField(null=True, db_index=True)
    view_name = models.CharField(max_length=255, blank=True, db_index=True)
    duration_ms = models.FloatField(default=0)
    query_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(default=0, help_text="Stored bytes of the document.")
    schema_version = models.PositiveSmallIntegerField(default=trace.schema_version)
    document = models.BinaryField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "trace"
        verbose_name_plural = "traces"

    def __str__(self) -> str:
        return f"{self.id} {self.method} {self.path}"

    def load_document(self) -> dict[str, Any]:
        """The decoded document; raises ``trace.TraceFormatError`` when corrupt."""
        return trace.loads(self.document)
