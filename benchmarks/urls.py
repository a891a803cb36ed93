from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/heavy/", views.heavy, name="bench-heavy"),
    path("bench/queries/", views.queries, name="bench-queries"),
    path("", include("example.urls")),
]
