from __future__ import annotations

from django.contrib import admin

from .models import Attachment, Project, Tag, Todo, TodoList


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    readonly_fields = ["uploaded_at"]


@admin.register(TodoList)
class TodoListAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ["title", "todo_list", "owner", "priority", "done", "due_date"]
    list_filter = ["done", "priority", "todo_list", "tags"]
    search_fields = ["title", "notes"]
    filter_horizontal = ["tags"]
    list_select_related = ["todo_list", "owner"]
    inlines = [AttachmentInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "budget", "starts_on", "owner"]
