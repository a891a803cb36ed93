from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone

from .models import Tag, Todo

RENEWAL_WINDOW = datetime.timedelta(weeks=4)


class TodoForm(forms.ModelForm):
    tags = forms.ModelMultipleChoiceField(queryset=Tag.objects.all(), required=False)

    class Meta:
        model = Todo
        fields = ["title", "notes", "priority", "estimate_hours", "due_date", "todo_list", "tags"]
        widgets = {"due_date": forms.DateInput(attrs={"type": "date"})}


class ApiTodoForm(forms.ModelForm):
    """Validates JSON payloads for the API; ``done`` is writable there."""

    class Meta:
        model = Todo
        fields = ["title", "notes", "done", "priority", "estimate_hours", "due_date", "todo_list"]


class RenewTodoForm(forms.Form):
    due_date = forms.DateField(
        help_text="Between today and four weeks from now.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_due_date(self) -> datetime.date:
        due_date = self.cleaned_data["due_date"]
        today = timezone.localdate()
        if due_date < today:
            raise forms.ValidationError("Invalid date - due date in the past.")
        if due_date > today + RENEWAL_WINDOW:
            raise forms.ValidationError("Invalid date - more than 4 weeks ahead.")
        return due_date


class AttachmentForm(forms.Form):
    file = forms.FileField()
    note = forms.CharField(max_length=200, required=False)


class ShareForm(forms.Form):
    email = forms.EmailField()
