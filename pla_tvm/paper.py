"""The seed paper's published figures (Sahu, Pal, Ukil, Majumdar, IJCNN 2021, Tables II–III),
shown beside ours in every report. These are citations, not measurements."""

PAPER_ROWS: dict[str, dict[str, float]] = {
    "baseline float": {"accuracy": 0.931, "f1": 0.926, "parameters": 804_169,
                       "flops": 222_908_190, "size_bytes": 9.71e6, "tflite_bytes": 3.13e6},
    "baseline pruned + int8 TFLite": {"accuracy": 0.929, "f1": 0.928, "flops": 222_908_190,
                                      "size_bytes": 0.801e6},
    "PLA float": {"accuracy": 0.938, "f1": 0.929, "parameters": 55_710, "size_bytes": 0.443e6},
    "PLA int8 TFLite": {"accuracy": 0.937, "f1": 0.928, "flops": 38_554,
                        "size_bytes": 62.3e3},
}
