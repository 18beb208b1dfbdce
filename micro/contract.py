"""The contract between the firmware and the host, in one place.

The firmware template is C and the host side is Python; both must agree on file names, exit codes
and the marker lines the harness prints. The host writes these values into the generated
``micro_config.h`` (so the C side never repeats them) and parses QEMU's output with the patterns
below. docs/micro.md describes the same contract for people.
"""

from __future__ import annotations

import re

INPUT_FILE = "micro_in.bin"
"""Input records, concatenated raw little-endian bytes, read by the firmware over semihosting."""

OUTPUT_FILE = "micro_out.bin"
"""Output records written by the firmware, one per input record, same encoding (with an app: the
bytes its steps wrote, in order)."""

STACK_PAINT = 0xA5A5A5A5
"""Word written over the unused stack; the first overwritten word gives the high-water mark."""

STATUS_EXITS = {
    "OK": 0,
    "NO_INPUT": 2,
    "NO_OUTPUT": 3,
    "SHORT_INPUT": 4,
    "MODEL_ERROR": 5,  # also an app's init or step reporting an error
    "WRITE_ERROR": 6,
}
"""Exit codes of the harness for outcomes that are not faults."""

FAULT_EXITS = {
    "NMI": 10,
    "HardFault": 11,
    "MemManage": 12,
    "BusFault": 13,
    "UsageFault": 14,
    "SecureFault": 15,
    "UnexpectedInterrupt": 16,
}
"""Exit code of each fault handler of the start-up code."""

CFSR_BITS = {
    0: "IACCVIOL",
    1: "DACCVIOL",
    3: "MUNSTKERR",
    4: "MSTKERR",
    8: "IBUSERR",
    9: "PRECISERR",
    10: "IMPRECISERR",
    11: "UNSTKERR",
    12: "STKERR",
    16: "UNDEFINSTR",
    17: "INVSTATE",
    18: "INVPC",
    19: "NOCP",
    20: "STKOF",
    24: "UNALIGNED",
    25: "DIVBYZERO",
}
"""Configurable Fault Status Register bits named in fault messages (STKOF: stack overflow)."""

TEST_HOOKS = {None: 0, "fault": 1, "hang": 2, "host_files": 3}
"""Deliberate misbehaviour compiled into the harness to test the host's error paths and the
sandbox (``host_files``: before the first inference, try to read :data:`ESCAPE_READ` and to
create :data:`ESCAPE_WRITES`, then print ``MICRO:ESCAPE read=R write=W up=U``, each 1 where it
succeeded)."""

ESCAPE_READ = "/etc/passwd"
"""A host file outside the run folder that the ``host_files`` hook tries to read."""
ESCAPE_WRITES = ("/tmp/micro_escape_probe.txt", "../micro_escape_probe.txt")
"""Files outside the run folder that the ``host_files`` hook tries to create (absolute, and in
the run folder's parent)."""
ESCAPE_RE = re.compile(r"^MICRO:ESCAPE read=(\d) write=(\d) up=(\d)$", re.MULTILINE)

FAULT_ADDRESS = 0xFFFFFFF0
"""Address the ``fault`` test hook writes to (nothing answers there on the MPS boards)."""

BEGIN_RE = re.compile(
    r"^MICRO:BEGIN board=(\S+) input_bytes=(\d+) output_bytes=(\d+)$", re.MULTILINE
)
RESULT_RE = re.compile(
    r"^MICRO:RESULT inferences=(\d+) ticks_total=(\d+) ticks_min=(\d+) ticks_max=(\d+)$",
    re.MULTILINE,
)
STACK_RE = re.compile(
    r"^MICRO:STACK model_bytes=(\d+) total_bytes=(\d+) reserved_bytes=(\d+)$", re.MULTILINE
)
APP_RE = re.compile(r"^MICRO:APP output_bytes=(\d+)$", re.MULTILINE)
"""Printed by a firmware with an app (:class:`micro.App`) after ``MICRO:RESULT``: how many bytes
its steps wrote to :data:`OUTPUT_FILE` in all."""
END_RE = re.compile(r"^MICRO:END$", re.MULTILINE)
ERROR_RE = re.compile(r"^MICRO:ERROR (.*)$", re.MULTILINE)
FAULT_RE = re.compile(r"^MICRO:FAULT type=(\w+)(.*)$", re.MULTILINE)
CFSR_RE = re.compile(r"cfsr=0x([0-9a-f]{8})")


def config_defines() -> dict[str, str]:
    """Return the contract as C preprocessor definitions for ``micro_config.h``.

    Returns
    -------
    dict of str to str
        Macro name to C literal.
    """
    defines = {
        "MICRO_INPUT_FILE": f'"{INPUT_FILE}"',
        "MICRO_OUTPUT_FILE": f'"{OUTPUT_FILE}"',
        "MICRO_STACK_PAINT": f"0x{STACK_PAINT:08X}u",
        "MICRO_FAULT_ADDRESS": f"0x{FAULT_ADDRESS:08X}u",
        "MICRO_HOOK_FAULT": str(TEST_HOOKS["fault"]),
        "MICRO_HOOK_HANG": str(TEST_HOOKS["hang"]),
        "MICRO_HOOK_HOST_FILES": str(TEST_HOOKS["host_files"]),
        "MICRO_ESCAPE_READ": f'"{ESCAPE_READ}"',
        "MICRO_ESCAPE_WRITE": f'"{ESCAPE_WRITES[0]}"',
        "MICRO_ESCAPE_UP": f'"{ESCAPE_WRITES[1]}"',
    }
    for name, code in STATUS_EXITS.items():
        defines[f"MICRO_EXIT_{name}"] = str(code)
    for name, code in FAULT_EXITS.items():
        macro = "UNEXPECTED_IRQ" if name == "UnexpectedInterrupt" else name.upper()
        defines[f"MICRO_EXIT_{macro}"] = str(code)
    return defines
