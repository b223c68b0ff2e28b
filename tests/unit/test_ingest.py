from pathlib import Path

import pytest

from pipelines.adapters.files import read_table
from pipelines.config.definitions import parse
from pipelines.config.errors import BadInputError

STOCK = parse(Path(__file__).resolve().parents[2] / "pipelines" / "usecases" / "stock.yaml")
HEADER = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n"
ROW = "AAPL,2013-03-04,431.0,434.0,427.5,430.0,17000000,430.0\n"


def write(tmp_path: Path, content: bytes | str, name: str = "batch.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("\n\n  \n", "the file is empty"),
        (HEADER, "has a header but no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a CSV file (binary content)"),
        (b"\xff\xfe\xfa" + b"x" * 100, "not a CSV file (not UTF-8 text)"),
        (HEADER.replace(",", ";") + ROW.replace(",", ";"), "separated by ';'"),
        (HEADER.replace(",", "\t") + ROW.replace(",", "\t"), "separated by '\\t'"),
        (HEADER + ROW + "AAPL,2013-03-05,1,2,3,4,5,6,7,8,9\n", "malformed CSV"),
    ],
)
def test_unreadable_files_get_one_line_reasons(tmp_path, content, message):
    with pytest.raises(BadInputError, match=None) as caught:
        read_table(write(tmp_path, content), STOCK)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadInputError, match="file not found"):
        read_table(tmp_path / "nope.csv", STOCK)


def test_keys_and_dates_stay_text(tmp_path):
    frame = read_table(write(tmp_path, HEADER + ROW), STOCK)
    assert frame["Date"].iloc[0] == "2013-03-04"
    assert frame["Volume"].iloc[0] == 17000000


def test_text_in_a_numeric_column_is_isolated_to_its_cells(tmp_path):
    frame = read_table(write(tmp_path, HEADER + ROW + ROW.replace("430.0,1", "abc,1")), STOCK)
    assert list(frame["Close"]) == [430, "abc"]


def test_gzip_input(tmp_path):
    import gzip

    path = tmp_path / "batch.csv.gz"
    path.write_bytes(gzip.compress((HEADER + ROW).encode()))
    assert len(read_table(path, STOCK)) == 1
