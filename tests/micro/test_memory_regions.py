"""Boards with memory besides flash and RAM: the model's constants go where they fit
(boards.json ``constant_regions``; mps3-an547's 512 KB ITCM is backed by QEMU's 2 MB SRAM)."""

from __future__ import annotations

import pytest

import micro
from micro.boards import get_board
from micro.footprint import CODE_RESERVE_BYTES, check_model_fits, place_constants

from .graphs import build_and_compare, int8_dense, requires_toolchain


def test_constants_stay_in_flash_while_they_fit_with_the_code():
    board = get_board("mps3-an547")
    assert [region.name for region in board.constant_regions] == ["sram"]
    assert place_constants(board, board.flash.length - CODE_RESERVE_BYTES) == "flash"
    assert place_constants(board, board.flash.length - CODE_RESERVE_BYTES + 1) == "sram"
    assert place_constants(get_board("mps2-an386"), 10**7) == "flash"  # no region: refused later


def test_constants_no_region_holds_are_refused_naming_every_region():
    board = get_board("mps3-an547")
    with pytest.raises(micro.ModelTooLargeError,
                       match="3000000 bytes of flash but mps3-an547 has 524288 bytes of flash "
                             "and 2097152 bytes of sram"):
        check_model_fits(board, 3_000_000, 0, 0, 0)


@requires_toolchain
def test_constants_larger_than_flash_run_from_the_sram(tmp_path):
    """A dense layer whose 150k weights take 600 KB as the int32 constant the graph keeps: more
    than mps3-an547's ITCM; linked into its SRAM, loaded there by QEMU, bit-exact with the host;
    the footprint reports both regions."""
    footprint = build_and_compare(int8_dense(n_in=500, n_out=300), "mps3-an547",
                                  tmp_path).footprint
    assert footprint.constants_region == "sram"
    assert footprint.region_bytes["sram"] >= 500 * 300 * 4
    assert footprint.image_flash_bytes < CODE_RESERVE_BYTES
    assert footprint.region_bytes["flash"] == footprint.image_flash_bytes
    assert micro.Firmware.load(tmp_path).footprint == footprint  # metadata.json keeps it
