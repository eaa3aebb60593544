"""Inference backends: onnxruntime sessions (``onnx.py``) and the classifier chosen by ``--model`` (the shipped ONNX
model or an exported one, ``classifiers.py``). No PyTorch here: checkpoints are the training side's (``train/``)."""
