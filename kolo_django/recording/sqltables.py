"""Table names in raw SQL, read with sqlparse."""

from __future__ import annotations

from functools import lru_cache

import sqlparse
from sqlparse.sql import Identifier, IdentifierList, Parenthesis
from sqlparse.tokens import DML, Keyword


@lru_cache(maxsize=256)
def tables_in(sql: str) -> tuple[str, ...]:
    found: list[str] = []
    for statement in sqlparse.parse(sql):
        _walk(statement, found)
    return tuple(dict.fromkeys(found))


def _walk(token_list: object, found: list[str]) -> None:
    expect_table = False
    for token in getattr(token_list, "tokens", ()):
        if token.is_whitespace or token.ttype in (sqlparse.tokens.Comment.Single,):
            continue
        if token.ttype is Keyword and (
            token.normalized == "FROM" or token.normalized.endswith("JOIN")
        ):
            expect_table = True
            continue
        if token.ttype is DML:
            expect_table = False
        if isinstance(token, Parenthesis) or (
            token.is_group and not isinstance(token, (Identifier, IdentifierList))
        ):
            _walk(token, found)
        if expect_table:
            identifiers = token.get_identifiers() if isinstance(token, IdentifierList) else [token]
            for identifier in identifiers:
                if isinstance(identifier, Identifier):
                    if isinstance(identifier.token_first(), Parenthesis):
                        _walk(identifier.token_first(), found)
                    else:
                        name = identifier.get_real_name()
                        if name:
                            found.append(name.strip('"`'))
            expect_table = False


@lru_cache(maxsize=256)
def written_table(sql: str) -> str | None:
    """The table an INSERT, UPDATE or DELETE statement writes to."""
    for statement in sqlparse.parse(sql):
        expect_table = False
        for token in statement.tokens:
            if token.is_whitespace:
                continue
            if token.ttype is DML and token.normalized == "UPDATE":
                expect_table = True
            elif token.ttype is Keyword and token.normalized in ("INTO", "FROM"):
                expect_table = True
            elif expect_table and isinstance(token, Identifier):
                name = token.get_real_name()
                return name.strip('"`') if name else None
            elif expect_table and token.ttype is not Keyword:
                expect_table = False
    return None
