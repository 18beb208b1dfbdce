"""On-device ECG: a streaming front end from raw ADC samples to the model's int8 beats.

* :mod:`pla_tvm.stream.config` -- :class:`StreamConfig`, every constant from the sampling rate
  and the model's input;
* :mod:`pla_tvm.stream.reference` -- :class:`FrontEnd`, the integer QRS detector, beat cutter,
  resampler and quantizer, sample by sample: the host reference the firmware must match bit for
  bit;
* :mod:`pla_tvm.stream.csource` -- the firmware's C translation (``stream/c/ecg_stream.c``) and
  its generated ``ecg_stream_config.h``.

See docs/stream.md.
"""

from pla_tvm.stream.config import StreamConfig
from pla_tvm.stream.reference import FrontEnd, StreamResult, quantize_beat

__all__ = ["FrontEnd", "StreamConfig", "StreamResult", "quantize_beat"]
