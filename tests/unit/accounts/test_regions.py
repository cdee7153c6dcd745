"""Québec's administrative regions: one table, found by code or by name."""

from __future__ import annotations

from portail.accounts import regions


def test_the_table_has_the_seventeen_regions_in_code_order() -> None:
    assert list(regions.REGIONS) == [f"{n:02d}" for n in range(1, 18)]
    assert regions.REGIONS["06"] == "Montréal"


def test_a_region_is_found_by_code_or_by_name_whatever_the_accents_and_case() -> None:
    assert regions.code_for("5") == regions.code_for("05") == regions.code_for(" Estrie ") == "05"
    assert regions.code_for("montreal") == "06"
    assert regions.code_for("Gaspésie–Îles-de-la-Madeleine") == "11"
    assert regions.code_for("gaspesie iles de la madeleine") == "11"


def test_an_unknown_region_is_none_and_has_no_name() -> None:
    assert regions.code_for("18") is None
    assert regions.code_for("") is None
    assert regions.code_for("---") is None
    assert regions.name("18") == regions.name(None) == ""
