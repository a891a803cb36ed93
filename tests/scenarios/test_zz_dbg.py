import pytest
@pytest.fixture(scope="session")
def thing(django_db_setup, django_db_blocker):
    from django.db import connection
    with django_db_blocker.unblock():
        print("NAME", connection.settings_dict["NAME"])
        with connection.cursor() as c:
            print(connection.introspection.table_names(c)[:50])
def test_x(thing):
    pass
