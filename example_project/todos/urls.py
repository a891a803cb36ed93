from __future__ import annotations

from django.urls import path
from django.views.generic import RedirectView

from . import api, views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="todo-list"), name="home"),
    path("todos/", views.todo_list, name="todo-list"),
    path("todos/new/", views.todo_create, name="todo-create"),
    path("todos/<int:pk>/", views.todo_detail, name="todo-detail"),
    path("todos/<int:pk>/complete/", views.todo_complete, name="todo-complete"),
    path("todos/<int:pk>/edit/", views.todo_update, name="todo-update"),
    path("todos/<int:pk>/delete/", views.todo_delete, name="todo-delete"),
    path("todos/<int:pk>/renew/", views.todo_renew, name="todo-renew"),
    path("todos/<int:pk>/tags/add/", views.todo_add_tag, name="todo-add-tag"),
    path("todos/<int:pk>/attach/", views.todo_attach, name="todo-attach"),
    path("todos/<int:pk>/share/", views.todo_share, name="todo-share"),
    path("todos/<int:pk>/secret/", views.todo_private, name="todo-private"),
    path("todos/<int:pk>/owner/", views.todo_owner_id, name="todo-owner-id"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("stats/", views.stats, name="stats"),
    path("report/", views.report, name="report"),
    path("session/", views.session_view, name="session-view"),
    path("session/favourite/", views.session_set, name="session-set"),
    path("weather/", views.weather, name="weather"),
    path("quote/", views.quote, name="quote"),
    path("projects/<uuid:pk>/", views.project_detail, name="project-detail"),
    path("api/todos/", api.todo_collection, name="api-todo-list"),
    path("api/todos/<int:pk>/", api.todo_item, name="api-todo-detail"),
    path("api/whoami/", api.whoami, name="api-whoami"),
]
