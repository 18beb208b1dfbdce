/* The front end's constants in a micro firmware: pla_tvm.stream.firmware.stream_app passes them
 * as the app's defines, which micro writes to micro_config.h (pla_tvm.stream.csource renders
 * the same macros into a standalone ecg_stream_config.h for other builds). */
#ifndef ECG_STREAM_CONFIG_H
#define ECG_STREAM_CONFIG_H
#include "micro_config.h"
#endif
