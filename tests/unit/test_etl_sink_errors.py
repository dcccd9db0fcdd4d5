"""Which insert errors blame the rows (retried row by row, refusals dead-lettered) and which
blame the warehouse (the pass fails and commits nothing)."""

from __future__ import annotations

import struct

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    InternalError,
    OperationalError,
    ProgrammingError,
    StreamFailureError,
)

from etl.sink import is_data_error


@pytest.mark.parametrize(
    "error",
    [
        DatabaseError("Code: 53. TYPE_MISMATCH", code=53, name="TYPE_MISMATCH"),
        DatabaseError("Code: 6. CANNOT_PARSE_TEXT", code=6, name="CANNOT_PARSE_TEXT"),
        DatabaseError("Code: 321.", code=321, name="VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"),
        OperationalError("Code: 53.", code=53),  # answered after a retry: still the data
        DataError("Unable to create native array for column `stars`"),  # encoding, client side
        ProgrammingError("Unrecognized column 'lang' in table test_ratings"),
        ValueError("invalid literal for int() with base 10: 'five'"),
        TypeError("an integer is required"),
        OverflowError("int too big to convert"),
        struct.error("ubyte format requires 0 <= number <= 255"),
    ],
)
def test_errors_of_the_data(error) -> None:
    assert is_data_error(error)


@pytest.mark.parametrize(
    "error",
    [
        DatabaseError("Code: 252. TOO_MANY_PARTS", code=252, name="TOO_MANY_PARTS"),
        DatabaseError("Code: 241.", code=241, name="MEMORY_LIMIT_EXCEEDED"),
        DatabaseError("Code: 159.", code=159, name="TIMEOUT_EXCEEDED"),
        DatabaseError("Code: 164.", code=164, name="READONLY"),
        DatabaseError("Code: 242.", code=242, name="TABLE_IS_READ_ONLY"),
        DatabaseError("Code: 60.", code=60, name="UNKNOWN_TABLE"),
        DatabaseError("HTTP driver received HTTP status 503"),  # a proxy: no ClickHouse code
        OperationalError("Error executing HTTP request attempt 1"),
        StreamFailureError("stream failed"),
        InternalError("cursor"),
        ConnectionResetError(104, "Connection reset by peer"),
        RuntimeError("anything else"),
    ],
)
def test_errors_of_the_warehouse(error) -> None:
    assert not is_data_error(error)
