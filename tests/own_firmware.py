"""A firmware of the tests' own around exported model libraries (micro.export).

Nothing of micro's firmware template is used: this module writes its own ``main.c``, start-up code
(vector table, ``.data``/``.bss`` set-up, FPU enable) and linker script, as a user integrating an
exported model into their product would. ``main`` runs every library on every input, compiled in
as constant arrays, and prints each output in hex through semihosting's SYS_WRITE0, then exits
with SYS_EXIT. QEMU runs confined by micro's sandbox. Every object a library contributes is checked
with ``arm-none-eabi-nm``: all the global symbols it defines carry the library's prefix.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from micro import get_board
from micro.sandbox import confine, find_sandbox
from micro.toolchain import find_toolchain

_STARTUP = r"""
#include <stdint.h>
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;
int main(void);

static void semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void own_write(const char* text) { semihost(0x04, text); }

void own_exit(int code) {
  uint32_t block[2] = {0x20026u, (uint32_t)code};  /* ADP_Stopped_ApplicationExit */
  semihost(0x20, block);                             /* SYS_EXIT_EXTENDED */
  semihost(0x18, (const void*)0x20026u);             /* SYS_EXIT, for older QEMU */
  for (;;) {}
}

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  *(volatile uint32_t*)0xE000ED88u |= 0xFu << 20;  /* CPACR: CP10 and CP11 full access */
  __asm__ volatile("dsb\n\tisb");
#endif
  own_exit(main());
}

static void Fault_Handler(void) { own_write("fault\n"); own_exit(99); }

__attribute__((section(".vectors"), used)) static const void* const vectors[16] = {
  &_stack_top, (void*)Reset_Handler, (void*)Fault_Handler, (void*)Fault_Handler,
  (void*)Fault_Handler, (void*)Fault_Handler, (void*)Fault_Handler,
};
"""

_LINKER = """
MEMORY {{
  FLASH (rx) : ORIGIN = {flash_origin:#x}, LENGTH = {flash_length:#x}
  RAM (rwx) : ORIGIN = {ram_origin:#x}, LENGTH = {ram_length:#x}
}}
ENTRY(Reset_Handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  _sidata = LOADADDR(.data);
  .data : {{ . = ALIGN(4); _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ . = ALIGN(4); _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def _c_bytes(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).view(np.uint8).ravel())


def _main(libraries: dict[str, Path], inputs: dict[str, np.ndarray]) -> str:
    lines = ["#include <stdint.h>", "void own_write(const char* text);"]
    lines += [f'#include "{prefix}.h"' for prefix in libraries]
    for prefix, records in inputs.items():
        lines.append(f"static const uint8_t {prefix}_inputs[{len(records)}][{prefix.upper()}"
                     f"_INPUT_BYTES] = {{")
        lines += [f"  {{{_c_bytes(record)}}}," for record in records]
        lines.append("};")
    lines += [
        "static void print_hex(const char* name, int index, const uint8_t* bytes, int n) {",
        "  static const char digits[] = \"0123456789abcdef\";",
        "  char line[1024]; int at = 0;",
        "  while (*name) line[at++] = *name++;",
        "  line[at++] = ' '; line[at++] = (char)('0' + index / 100);",
        "  line[at++] = (char)('0' + index / 10 % 10); line[at++] = (char)('0' + index % 10);",
        "  line[at++] = ' ';",
        "  for (int i = 0; i < n; ++i) { line[at++] = digits[bytes[i] >> 4];"
        " line[at++] = digits[bytes[i] & 15]; }",
        "  line[at++] = '\\n'; line[at] = 0; own_write(line);",
        "}",
        "int main(void) {",
    ]
    for prefix, records in inputs.items():
        upper = prefix.upper()
        lines += [
            f"  for (int i = 0; i < {len(records)}; ++i) {{",
            f"    uint8_t out[{upper}_OUTPUT_BYTES];",
            f"    if ({prefix}_run({prefix}_inputs[i], out) != 0) return 1;",
            f'    print_hex("{prefix}", i, out, {upper}_OUTPUT_BYTES);',
            "  }",
        ]
    lines += ['  own_write("done\\n");', "  return 0;", "}", ""]
    return "\n".join(lines)


def build_and_run(libraries: dict[str, Path], inputs: dict[str, np.ndarray], work: Path,
                  timeout: float = 120.0) -> dict[str, np.ndarray]:
    """Link the exported ``libraries`` (prefix -> folder) into one firmware of our own, run
    ``inputs[prefix]`` (records ``[n, ...]`` of the input dtype) through each, and return each
    library's outputs ``[n, OUTPUT_BYTES]`` as uint8."""
    boards = {json.loads((path / "metadata.json").read_text())["board"]
              for path in libraries.values()}
    assert len(boards) == 1, boards
    board = get_board(boards.pop())
    toolchain = find_toolchain()
    work.mkdir(parents=True, exist_ok=True)
    (work / "main.c").write_text(_main(libraries, inputs))
    (work / "startup.c").write_text(_STARTUP)
    (work / "link.ld").write_text(_LINKER.format(
        flash_origin=board.flash.origin, flash_length=board.flash.length,
        ram_origin=board.ram.origin, ram_length=board.ram.length))
    sources, includes, owner = [work / "main.c", work / "startup.c"], [], {}
    for prefix, path in libraries.items():
        for source in sorted((path / "src").glob("*.c")):
            sources.append(source)
            owner[source] = prefix
        includes += [f"-I{path / 'include'}", f"-I{path / 'src'}"]
    flags = [*board.gcc_flags, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    objects = []
    for index, source in enumerate(sources):
        # Each library's sources find their own private headers first (quoted includes).
        obj = work / f"{index:03d}_{source.stem}.o"
        subprocess.run([str(toolchain.gcc), *flags, *includes, "-c", str(source), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objects.append(str(obj))
        if source in owner:  # every global a library defines carries its prefix
            listing = subprocess.run([str(toolchain.nm), "-g", "--defined-only", str(obj)],
                                     check=True, capture_output=True, text=True).stdout
            bare = [line.split()[-1] for line in listing.splitlines()
                    if line.strip() and not line.split()[-1].startswith(f"{owner[source]}_")]
            assert not bare, (source, bare)
    elf = work / "own.elf"
    subprocess.run([str(toolchain.gcc), *board.gcc_flags, "-nostartfiles", "--specs=nano.specs",
                    "--specs=nosys.specs", f"-T{work / 'link.ld'}", *objects, "-lm", "-o",
                    str(elf)], check=True, capture_output=True, text=True)
    command = [str(toolchain.qemu), "-M", board.qemu_machine, "-nographic", "-monitor", "none",
               "-serial", "null", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(elf)]
    result = subprocess.run(confine(command, bwrap=find_sandbox(), work_dir=work,
                                    read_only=[elf]),
                            capture_output=True, text=True, timeout=timeout)
    printed = result.stdout + result.stderr  # QEMU writes the semihosting console to stderr
    assert result.returncode == 0 and printed.rstrip().endswith("done"), (
        result.returncode, printed[-3000:])
    outputs: dict[str, list[bytes]] = {prefix: [] for prefix in libraries}
    for line in printed.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] in outputs:
            outputs[fields[0]].append(bytes.fromhex(fields[2]))
    return {prefix: np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), -1)
            for prefix, rows in outputs.items()}
