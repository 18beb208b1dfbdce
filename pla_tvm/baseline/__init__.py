"""The paper's baseline: a 1-D ResNet beat classifier, its pruned full-int8 TFLite model, and
their evaluation on Keras, the TFLite interpreter and the TFLite Micro interpreter."""
