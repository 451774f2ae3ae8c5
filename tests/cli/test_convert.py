"""``featurepipe convert``'s options and what the CLI prints besides the job (issue 12)."""

from __future__ import annotations

import logging

import pytest

from featurepipe.cli.main import build_parser, setup_logging


def test_convert_column_options_parse() -> None:
    args = build_parser().parse_args(
        [
            "convert", "a.csv", "--output", "o", "--columns", "a,b", "--drop-columns", "c",
            "--rename", "Unnamed: 0=row", "--rename", "x=y", "--no-header",
            "--column-names", "Unnamed: 0,a,b,c,x", "--on-new-column", "error", "--verbose",
        ]
    )  # fmt: skip
    assert (args.columns, args.drop_columns, args.rename) == ("a,b", "c", ["Unnamed: 0=row", "x=y"])
    assert args.no_header and args.column_names == "Unnamed: 0,a,b,c,x"
    assert args.on_new_column == "error" and args.verbose


def test_bad_rename_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from featurepipe.cli.main import main

    assert main(["convert", "nothing.csv", "--output", "o", "--rename", "noequals"]) == 2
    assert "--rename takes OLD=NEW" in capsys.readouterr().err


def test_log_records_print_as_warnings_and_noise_is_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging()
    setup_logging()  # idempotent: one handler
    logging.getLogger("featurepipe.convert").warning("named %s", "'Unnamed: 0'")
    logging.getLogger().warning(
        "apitools not found, and bigquery client libraries are not available"
    )
    logging.getLogger("somelib").warning("a real warning")
    logging.getLogger("somelib").info("not shown")
    err = capsys.readouterr().err
    assert err.splitlines() == ["Warning: named 'Unnamed: 0'", "Warning: somelib: a real warning"]
