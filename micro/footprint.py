"""Flash and RAM footprint of the model and of the whole firmware image.

Two views matter when choosing a board: what the model itself costs (kernel code, constants,
intermediate and workspace arenas: the objects ``model.o`` and ``kernels.o``) and what the whole
image needs (plus start-up code, harness, newlib, and the heap and stack reservations). With an
app (:class:`micro.App`), its objects are measured apart as a third view, inside the image's.
All come from ``arm-none-eabi-size``; the stack actually used is measured at run time (see
:class:`micro.api.RunResult`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .boards import Board
from .errors import BuildError, ModelTooLargeError
from .proc import run_command
from .toolchain import Toolchain


@dataclass(frozen=True)
class Footprint:
    """Memory use in bytes.

    Attributes
    ----------
    model_flash_bytes : int
        Kernel code, constants and initialised data of the model.
    model_ram_bytes : int
        Initialised and zeroed data of the model (both arenas).
    image_flash_bytes : int
        Everything stored in flash (code, constants, ``.data`` load image).
    image_ram_bytes : int
        Everything placed in RAM, including the heap and stack reservations.
    stack_reserved_bytes, heap_reserved_bytes : int
        The reservations inside ``image_ram_bytes``.
    board_flash_bytes, board_ram_bytes : int
        Capacity of the board.
    app_flash_bytes, app_ram_bytes : int
        The same as the model's for the objects of an app's sources (:class:`micro.App`; 0
        without one). Part of the image, not of the model.
    constants_region : str
        Where the model's constant arrays are: ``"flash"`` or one of the board's
        ``constant_regions`` (:func:`place_constants`).
    region_bytes : dict of str to int
        Bytes of the image in each memory region of the board that it uses, by name (``flash``,
        ``ram``, then the constant regions): ``image_flash_bytes`` and ``image_ram_bytes`` are
        the first two.
    """

    model_flash_bytes: int
    model_ram_bytes: int
    image_flash_bytes: int
    image_ram_bytes: int
    stack_reserved_bytes: int
    heap_reserved_bytes: int
    board_flash_bytes: int
    board_ram_bytes: int
    app_flash_bytes: int = 0
    app_ram_bytes: int = 0
    constants_region: str = "flash"
    region_bytes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        """Return the fields as a plain dictionary (for JSON reports)."""
        return asdict(self)


def _size(toolchain: Toolchain, args: list) -> str:
    result = run_command([toolchain.size, *args])
    if result.returncode != 0:
        raise BuildError(f"arm-none-eabi-size failed: {result.stderr.strip()}")
    return result.stdout


def _object_sizes(toolchain: Toolchain, objects: Iterable[Path]) -> tuple[int, int]:
    """Flash (text + data) and RAM (data + bss) of objects, in Berkeley format."""
    flash = ram = 0
    for line in _size(toolchain, ["-B", *objects]).splitlines()[1:]:
        text, data, bss = (int(v) for v in line.split()[:3])
        flash += text + data
        ram += data + bss
    return flash, ram


_NOT_LOADED = (".debug", ".comment", ".ARM.attributes", ".stab")


def _sections(toolchain: Toolchain, elf: Path) -> dict[str, tuple[int, int]]:
    """Size and address of each section of an image that occupies target memory."""
    sections = {}
    for line in _size(toolchain, ["-A", "-d", elf]).splitlines():
        parts = line.split()
        if parts and parts[0].startswith(_NOT_LOADED):
            continue
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = (int(parts[1]), int(parts[2]))
    return sections


def measure(
    toolchain: Toolchain,
    board: Board,
    elf: Path,
    model_objects: Iterable[Path],
    app_objects: Iterable[Path] = (),
) -> Footprint:
    """Measure the model's objects, an app's objects and the linked image.

    Parameters
    ----------
    toolchain : Toolchain
        Provides ``arm-none-eabi-size``.
    board : Board
        Supplies the memory map.
    elf : Path
        The linked firmware.
    model_objects : iterable of Path
        ``model.o`` and the kernel object.
    app_objects : iterable of Path
        The objects of an app's sources (none without an app).

    Returns
    -------
    Footprint
        Model and image sizes.
    """
    model_flash, model_ram = _object_sizes(toolchain, model_objects)
    app_objects = list(app_objects)
    app_flash, app_ram = _object_sizes(toolchain, app_objects) if app_objects else (0, 0)
    sections = _sections(toolchain, elf)

    def inside(region, address: int) -> bool:
        return region.origin <= address < region.origin + region.length

    image_flash = sum(s for s, a in sections.values() if s and inside(board.flash, a))
    image_ram = sum(s for s, a in sections.values() if s and inside(board.ram, a))
    image_flash += sections.get(".data", (0, 0))[0]  # load image of initialised data
    extra = {region.name: sum(s for s, a in sections.values() if s and inside(region, a))
             for region in board.constant_regions}
    constants_at = sections.get(".micro_constants", (0, board.flash.origin))[1]
    constants_region = next((region.name for region in board.constant_regions
                             if inside(region, constants_at)), "flash")
    return Footprint(
        model_flash_bytes=model_flash,
        model_ram_bytes=model_ram,
        image_flash_bytes=image_flash,
        image_ram_bytes=image_ram,
        stack_reserved_bytes=sections.get(".stack", (0, 0))[0],
        heap_reserved_bytes=sections.get(".heap", (0, 0))[0],
        board_flash_bytes=board.flash.length,
        board_ram_bytes=board.ram.length,
        app_flash_bytes=app_flash,
        app_ram_bytes=app_ram,
        constants_region=constants_region,
        region_bytes={"flash": image_flash, "ram": image_ram,
                      **{name: used for name, used in extra.items() if used}},
    )


#: Flash the code, start-up and library of an image need at most besides the model's constants,
#: as :func:`place_constants` assumes (the paper-size ResNet's image has 18 KB of code).
CODE_RESERVE_BYTES = 64 * 1024


def place_constants(board: Board, constant_bytes: int) -> str:
    """Where a build places the model's constant arrays.

    In flash when they fit there with :data:`CODE_RESERVE_BYTES` left for the code; else in the
    first of the board's ``constant_regions`` that holds them; else in flash, where
    :func:`check_model_fits` or the linker refuses the model.

    Parameters
    ----------
    board : Board
        Target board.
    constant_bytes : int
        Total size of the model's constants (aligned).

    Returns
    -------
    str
        ``"flash"`` or a region's name.
    """
    if constant_bytes + CODE_RESERVE_BYTES <= board.flash.length:
        return "flash"
    for region in board.constant_regions:
        if constant_bytes <= region.length:
            return region.name
    return "flash"


def check_model_fits(
    board: Board, constant_bytes: int, ram_bytes: int, stack_bytes: int, heap_bytes: int
) -> None:
    """Refuse a model whose constants or buffers alone exceed the board, before any build.

    Parameters
    ----------
    board : Board
        Target board.
    constant_bytes : int
        Total size of the model's constants (they go to flash).
    ram_bytes : int
        Intermediate and workspace arenas plus input/output buffers (they go to RAM).
    stack_bytes, heap_bytes : int
        Reservations that share the RAM.

    Raises
    ------
    ModelTooLargeError
        Naming the region, what is needed and what the board has.
    """
    largest = max([board.flash.length, *(r.length for r in board.constant_regions)])
    if constant_bytes > largest:
        where = f"{board.flash.length} bytes of flash" + "".join(
            f" and {r.length} bytes of {r.name}" for r in board.constant_regions
        )
        raise ModelTooLargeError(
            f"the model's constants need {constant_bytes} bytes of flash but {board.name} has "
            f"{where}"
        )
    available = board.ram.length - stack_bytes - heap_bytes
    if ram_bytes > available:
        raise ModelTooLargeError(
            f"the model's buffers need {ram_bytes} bytes of RAM but {board.name} has {available} "
            f"bytes left after a {stack_bytes}-byte stack and a {heap_bytes}-byte heap"
        )
