/* Start-up code and vector table of micro's firmware template.
 *
 * newlib's crt0 neither enables the FPU nor uses the linker script's stack, so the firmware
 * brings itself up: FPU (and MVE) access on, stack limit set on Armv8-M (overflow faults instead
 * of corrupting memory), .data copied, .bss zeroed, the stack painted for the high-water mark,
 * the configurable fault handlers enabled, semihosting handles opened, then exit(main()).
 * Every fault handler prints one MICRO:FAULT line over semihosting and exits QEMU with a code
 * that names the fault. Board facts come from the generated micro_config.h. */
#include <stdint.h>
#include <stdlib.h>

#include "micro_config.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

extern int main(void);
extern void initialise_monitor_handles(void);
extern void SysTick_Handler(void);

#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t*)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t*)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t*)0xE000ED38u)

/* Semihosting SYS_WRITE0: write a NUL-terminated string to the host (QEMU's stderr). */
static void semihost_write0(const char* text) {
  register uint32_t op __asm__("r0") = 0x04u;
  register const char* arg __asm__("r1") = text;
  __asm__ volatile("bkpt 0xAB" : "+r"(op) : "r"(arg) : "memory");
}

/* Semihosting SYS_EXIT_EXTENDED: end the emulation with this exit code. Does not depend on
 * newlib's state, which a fault (a stack overflow during start-up, say) may have left unset. */
static void __attribute__((noreturn)) semihost_exit(int code) {
  uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
  register uint32_t op __asm__("r0") = 0x20u;
  register uint32_t* arg __asm__("r1") = block;
  __asm__ volatile("bkpt 0xAB" : "+r"(op) : "r"(arg) : "memory");
  for (;;) {
  }
}

static char* put_text(char* out, const char* text) {
  while (*text) *out++ = *text++;
  return out;
}

static char* put_hex(char* out, uint32_t value) {
  out = put_text(out, "0x");
  for (int shift = 28; shift >= 0; shift -= 4) *out++ = "0123456789abcdef"[(value >> shift) & 0xFu];
  return out;
}

static char g_fault_line[160]; /* static: a handler may run with no stack left */

static void __attribute__((noreturn)) fault(const char* name, int code) {
  char* p = put_text(g_fault_line, "MICRO:FAULT type=");
  p = put_text(p, name);
#if !MICRO_ARMV6M
  p = put_hex(put_text(p, " cfsr="), SCB_CFSR);
  p = put_hex(put_text(p, " hfsr="), SCB_HFSR);
  p = put_hex(put_text(p, " mmfar="), SCB_MMFAR);
  p = put_hex(put_text(p, " bfar="), SCB_BFAR);
#endif
  put_text(p, "\n")[0] = '\0';
  semihost_write0(g_fault_line);
  semihost_exit(code);
}

/* Each handler first moves the stack pointer back to the top of the stack (the fault may be a
 * stack overflow, and the program ends anyway), then reports. */
#define MICRO_FAULT_HANDLER(handler, name, code)                               \
  void __attribute__((noreturn, used)) handler##_report(void) { fault(name, code); } \
  void __attribute__((naked, noreturn)) handler(void) {                        \
    __asm__ volatile("ldr r0, =__stack_top\n"                                  \
                     "msr msp, r0\n"                                           \
                     "bl " #handler "_report\n");                              \
  }

MICRO_FAULT_HANDLER(NMI_Handler, "NMI", MICRO_EXIT_NMI)
MICRO_FAULT_HANDLER(HardFault_Handler, "HardFault", MICRO_EXIT_HARDFAULT)
MICRO_FAULT_HANDLER(MemManage_Handler, "MemManage", MICRO_EXIT_MEMMANAGE)
MICRO_FAULT_HANDLER(BusFault_Handler, "BusFault", MICRO_EXIT_BUSFAULT)
MICRO_FAULT_HANDLER(UsageFault_Handler, "UsageFault", MICRO_EXIT_USAGEFAULT)
MICRO_FAULT_HANDLER(SecureFault_Handler, "SecureFault", MICRO_EXIT_SECUREFAULT)
MICRO_FAULT_HANDLER(Default_Handler, "UnexpectedInterrupt", MICRO_EXIT_UNEXPECTED_IRQ)

/* Empty hooks for newlib's exit path when linked with -nostartfiles. */
void _init(void) {}
void _fini(void) {}

void __attribute__((noinline, noreturn, used)) start_c(void) {
  uint32_t* src = __data_load;
  for (uint32_t* dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (uint32_t* dst = __bss_start; dst < __bss_end;) *dst++ = 0u;
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = __stack_limit; p < sp - 16; ++p) *p = MICRO_STACK_PAINT;
#if !MICRO_ARMV6M
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18); /* MemManage, BusFault, UsageFault */
#endif
  initialise_monitor_handles();
  exit(main());
}

void __attribute__((naked, noreturn)) Reset_Handler(void) {
  /* No C here before the FPU is on: the compiler may use FP/MVE registers anywhere. */
  __asm__ volatile(
#if MICRO_HAS_FPU
      "ldr r0, =0xE000ED88\n"
      "ldr r1, [r0]\n"
      "orr r1, r1, #(0xF << 20)\n"
      "str r1, [r0]\n"
      "dsb\n"
      "isb\n"
#endif
#if MICRO_ARMV8M
      "ldr r0, =__stack_limit\n"
      "msr msplim, r0\n"
#endif
      "b start_c\n");
}

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t micro_vectors[16 + 32] = {
    (vector_t)__stack_top,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,
    0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 47] = Default_Handler,
};
