"""Only I/O is retried: a second attempt can fix a locked database or a dropped connection, not a bug."""
import sqlite3

from prefect.states import Failed
from sqlalchemy.exc import OperationalError

from flows.hooks import retry_on_io_error


def failed_with(error: BaseException):
    return Failed(data=error, message=repr(error))


def db_error(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


def test_a_locked_database_is_retried():
    assert retry_on_io_error(None, None, failed_with(db_error("database is locked")))


def test_a_lost_connection_is_retried():
    assert retry_on_io_error(None, None, failed_with(ConnectionResetError("connection reset by peer")))


def test_a_missing_table_is_not_retried():
    assert not retry_on_io_error(None, None, failed_with(db_error("no such table: callbacks")))


def test_a_bug_is_not_retried():
    assert not retry_on_io_error(None, None, failed_with(KeyError("due_at")))
