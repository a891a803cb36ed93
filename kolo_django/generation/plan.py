"""The plan: typed steps between a trace and the code of a test.

Templates only render these steps; processors and users can inspect or
replace them before rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .values import Code, literal


@dataclass
class SeedRowStep:
    var: str
    model: str  # class name, imported in ``imports``
    fields: dict[str, Code]
    assign: bool = True
    comment: str = ""
    using: str | None = None  # database alias, when not "default"
    factory: str | None = None  # "TodoFactory": created with TodoFactory.create(...)
    kind: str = "seed_row"


@dataclass
class SeedBulkStep:
    """Rows no other step refers to: ``Model.objects.bulk_create([...])``."""

    model: str
    rows: list[dict[str, Code]]
    using: str | None = None
    kind: str = "seed_bulk"


@dataclass
class SeedUpdateStep:
    """``Model.objects.filter(pk=...).update(...)`` for values create() cannot set."""

    model: str
    pk: Code
    fields: dict[str, Code]
    kind: str = "seed_update"


@dataclass
class SeedLinksStep:
    owner: str
    field: str
    targets: list[Code]
    kind: str = "seed_links"


@dataclass
class SetPasswordStep:
    user: str
    password: str
    kind: str = "set_password"


@dataclass
class ResetSequencesStep:
    models: list[str]
    kind: str = "reset_sequences"


@dataclass
class LoginStep:
    user: str
    kind: str = "login"


@dataclass
class RestoreSessionStep:
    values: dict[str, Code]
    kind: str = "restore_session"


@dataclass
class MockHttpStep:
    method: str
    url: str
    responses: list[dict[str, Any]]  # status, body (str), content_type
    kind: str = "mock_http"


@dataclass
class PlannedRequest:
    method: str  # lower-case test-client method
    path: Code
    kwargs: dict[str, Code]
    response_var: str = "response"
    on_commit: bool = False
    lookups: list[LookupStep] = field(default_factory=list)
    kind: str = "request"
    # The headers sent, by name; ``kwargs["headers"]`` is their rendering (see set_headers).
    headers: dict[str, Code] = field(default_factory=dict)

    def set_headers(self, headers: dict[str, Code]) -> None:
        """Replace the headers, keeping ``kwargs["headers"]`` in step."""
        self.headers = dict(headers)
        if headers:
            self.kwargs["headers"] = headers_code(headers)
        else:
            self.kwargs.pop("headers", None)


def headers_code(headers: dict[str, Code]) -> Code:
    """The ``headers=`` argument of a test-client call."""
    items = [f"{literal(name).text}: {code.text}" for name, code in headers.items()]
    imports = frozenset().union(*(code.imports for code in headers.values()))
    return Code("{" + ", ".join(items) + "}", imports)


@dataclass
class LookupStep:
    """After a request: find a row it created (``var = Model.objects.get(...)``)."""

    var: str
    model: str
    filters: dict[str, Code]
    assign: bool = True  # False: nothing refers to the row later; get() alone asserts it exists
    kind: str = "lookup"


@dataclass
class Assertion:
    """One assertion; ``op`` is one of equal, true, false, refresh, redirects,
    template; templates map each op to their runner's idiom."""

    op: str
    left: Code
    right: Code | None = None
    comment: str = ""
    kind: str = "assert"


@dataclass
class RequestBlock:
    index: int
    title: str
    request: PlannedRequest
    pre_steps: list[Any] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)


@dataclass
class Plan:
    class_name: str
    test_name: str
    docstring: str
    imports: set[str] = field(default_factory=set)
    databases: list[str] = field(default_factory=lambda: ["default"])
    freeze_time: Code | None = None
    time_backend: str | None = None
    http_backend: str | None = None
    seeds: list[Any] = field(default_factory=list)
    mocks: list[MockHttpStep] = field(default_factory=list)
    blocks: list[RequestBlock] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needs_reset_helper: bool = False

    def add_code(self, code: Code | None) -> Code | None:
        if code is not None:
            self.imports.update(code.imports)
        return code
