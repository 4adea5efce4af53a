"""Tiny's raw values become stored ones, or a BadValue that names the field, value and reason."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.errors import BadValue, short_error
from core.values import (
    AMBIGUOUS,
    map_records,
    parse_date,
    parse_id,
    parse_money,
    parse_optional_id,
    parse_quantity,
    parse_text,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1.234.567,89", "1234567.89"),
        ("-1.234,56", "-1234.56"),
        ("1234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("0,5", "0.50"),
        ("0.285", "0.28"),  # half-even: .285 → .28, .295 → .30
        ("0.295", "0.30"),
        ("  12 ", "12.00"),
        ("1.234.567", "1234567.00"),
        ("99999999999999.99", "99999999999999.99"),
        ("-99999999999999.99", "-99999999999999.99"),
        (Decimal("10.5"), "10.50"),
        (7, "7.00"),
    ],
)
def test_money_parses_tiny_and_brazilian_amounts_exactly(raw, expected):
    value = parse_money(raw, "valor")
    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize("raw", ["1.234", "1,234", "-9,999", "12.500"])
def test_an_amount_whose_separator_could_be_thousands_or_decimals_is_set_aside(raw):
    with pytest.raises(BadValue) as caught:
        parse_money(raw, "valor")
    assert caught.value.reason == AMBIGUOUS
    assert (caught.value.field, caught.value.value) == ("valor", raw)


@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "1e5",
        "abc",
        "1.2.3",
        "1.23,4.5",
        "5,",
        "R$ 10",
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        True,
        [1],
    ],
)
def test_what_is_not_a_number_is_set_aside(raw):
    with pytest.raises(BadValue, match="não é um número"):
        parse_money(raw, "valor")


@pytest.mark.parametrize(
    "raw", ["123456789012345678.99", "100000000000000", "99999999999999.995", Decimal("1E+999")]
)
def test_an_amount_past_numeric_16_2_is_set_aside(raw):
    with pytest.raises(BadValue, match="limite"):
        parse_money(raw, "valor")


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_empty_amount_is_none(raw):
    assert parse_money(raw, "valor") is None


def test_quantities_take_a_lone_dot_as_the_decimal_point_and_keep_four_places():
    assert parse_quantity("1.234", "quantidade") == Decimal("1.234")
    assert parse_quantity("2,5", "quantidade") == Decimal("2.5")
    assert str(parse_quantity(3, "saldo")) == "3.0000"
    with pytest.raises(BadValue, match="ambíguo"):
        parse_quantity("1,234", "quantidade")
    with pytest.raises(BadValue, match="limite"):
        parse_quantity("1000000000000", "saldo")


def test_ids_are_positive_integers_within_bigint():
    assert parse_id("123") == 123
    assert parse_id(2**63 - 1) == 2**63 - 1
    for bad in [2**63, "9223372036854775808", "-5", "12a", "1.5", True, None, ""]:
        with pytest.raises(BadValue):
            parse_id(bad)
    assert parse_optional_id("", "id_vendedor") is None
    assert parse_optional_id(0, "id_vendedor") is None
    with pytest.raises(BadValue, match="fora do limite"):
        parse_optional_id(10**20, "id_vendedor")


def test_text_loses_nul_and_control_characters_and_lone_surrogates_become_a_replacement():
    assert parse_text("Jo\x00ão\x07 Silva", "nome", 300) == "João Silva"
    assert parse_text("a\ud800b", "nome", 300) == "a\ufffdb"
    assert parse_text("linha 1\nlinha 2\tfim", "historico", 300) == "linha 1\nlinha 2\tfim"
    assert parse_text("😀 ok", "nome", 300) == "😀 ok"
    assert parse_text("abcdef", "nome", 3) == "abc"
    assert parse_text("\x00", "nome", 300) is None
    assert parse_text("", "nome", 300) is None
    assert parse_text(12345, "numero", 50) == "12345"


def test_dates_must_exist():
    assert parse_date("29/02/2024", "data_pedido") == date(2024, 2, 29)
    assert parse_date("2024-12-31", "data_pedido") == date(2024, 12, 31)
    assert parse_date("05/01/2025 10:30:00", "data_pedido") == date(2025, 1, 5)
    assert parse_date("", "data_prevista") is None
    for impossible in ["31/02/2026", "00/00/0000", "29/02/2025"]:
        with pytest.raises(BadValue, match="não existe"):
            parse_date(impossible, "data_pedido")
    for malformed in ["2026/02/01", "1/2/2026", "ab/cd/efgh", "05/01/2025x"]:
        with pytest.raises(BadValue, match="dd/mm/aaaa"):
            parse_date(malformed, "data_pedido")


def test_a_page_keeps_its_good_records_and_names_the_bad_one():
    def mapper(record):
        return {
            "tinyId": parse_id(record.get("id")),
            "valor": parse_money(record["valor"], "valor"),
        }

    records = [
        {"id": "1", "valor": "10.00"},
        {"id": "123", "valor": "NaN"},
        {"id": "oops", "valor": "1.00"},
        {"id": "3", "valor": "x" * 100},
    ]
    page = map_records(records, mapper, "pedido")
    assert page.rows == [{"tinyId": 1, "valor": Decimal("10.00")}]
    assert page.set_aside[0] == "pedido 123: registro não gravado, valor 'NaN' não é um número"
    assert page.set_aside[1].startswith("pedido sem id válido: registro não gravado, id 'oops'")
    assert "'xxxxxxxx" in page.set_aside[2] and len(page.set_aside[2]) < 120


def test_a_short_error_is_the_first_line_of_a_database_error_and_at_most_300_chars():
    sql_error = (
        "(psycopg.errors.NumericValueOutOfRange) numeric field overflow\n[SQL: " + "x" * 8000
    )
    assert (
        short_error(sql_error) == "(psycopg.errors.NumericValueOutOfRange) numeric field overflow"
    )
    assert len(short_error(ValueError("y" * 1000))) == 300
    assert short_error(KeyError("k")) == "KeyError: 'k'"
