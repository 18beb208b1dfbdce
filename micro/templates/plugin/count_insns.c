/* QEMU TCG plugin of micro: exact instruction counts of each inference.
 *
 * SysTick under -icount only resolves whole ticks (tens of instructions). This plugin adds one to
 * a counter for every guest instruction executed and, when execution reaches the first
 * instruction of the harness's markers micro_count_begin / micro_count_end, records the counter.
 * The difference between a begin and the next end is one inference (plus the few instructions
 * of the call from the harness). At exit it writes one count per line to the file named by the
 * out= argument (relative to QEMU's working directory).
 *
 * Arguments: begin=<address>,end=<address>,out=<file>; addresses in hex or decimal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t g_executed;
static uint64_t g_begin_addr, g_end_addr;
static uint64_t g_started_at;
static int g_running;
static uint64_t* g_counts;
static size_t g_count, g_capacity;
static char g_out[1024] = "micro_counts.txt";

static void on_begin(unsigned int vcpu, void* userdata) {
  (void)vcpu;
  (void)userdata;
  g_started_at = g_executed;
  g_running = 1;
}

static void on_end(unsigned int vcpu, void* userdata) {
  (void)vcpu;
  (void)userdata;
  if (!g_running) return;
  g_running = 0;
  if (g_count == g_capacity) {
    size_t capacity = g_capacity ? 2 * g_capacity : 1024;
    uint64_t* grown = realloc(g_counts, capacity * sizeof(uint64_t));
    if (!grown) return;
    g_counts = grown;
    g_capacity = capacity;
  }
  g_counts[g_count++] = g_executed - g_started_at;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t addr = qemu_plugin_insn_vaddr(insn);
    /* Marker callbacks first: they see the count before their own instruction. */
    if (addr == g_begin_addr)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
    if (addr == g_end_addr)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &g_executed, 1);
  }
}

static void write_counts(qemu_plugin_id_t id, void* userdata) {
  (void)id;
  (void)userdata;
  FILE* out = fopen(g_out, "w");
  if (!out) return;
  for (size_t i = 0; i < g_count; i++) fprintf(out, "%llu\n", (unsigned long long)g_counts[i]);
  fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc,
                                           char** argv) {
  (void)info;
  int have_begin = 0, have_end = 0;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "begin=", 6) == 0) {
      g_begin_addr = strtoull(argv[i] + 6, NULL, 0);
      have_begin = 1;
    } else if (strncmp(argv[i], "end=", 4) == 0) {
      g_end_addr = strtoull(argv[i] + 4, NULL, 0);
      have_end = 1;
    } else if (strncmp(argv[i], "out=", 4) == 0) {
      snprintf(g_out, sizeof(g_out), "%s", argv[i] + 4);
    } else {
      fprintf(stderr, "count_insns: unknown argument %s\n", argv[i]);
      return -1;
    }
  }
  if (!have_begin || !have_end) {
    fprintf(stderr, "count_insns: begin= and end= are required\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_counts, NULL);
  return 0;
}
